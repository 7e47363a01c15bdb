"""The cellar's rule of thumb: colour intensity and proline tell the three cultivars apart."""

import pandas as pd


def by_colour(rows: pd.DataFrame) -> list[str]:
    """class_0 is rich in proline; class_1 is pale; the rest is class_2."""
    out = []
    for proline, colour in zip(rows["proline"], rows["color_intensity"], strict=True):
        if proline > 1000:
            out.append("class_0")
        elif colour < 3.8:
            out.append("class_1")
        else:
            out.append("class_2")
    return out
