"""``PolygonGrid`` answers exactly as shapely's strict ``contains`` on awkward polygons and points."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from irl_vla.scoring.containment import PolygonGrid


def _star(n: int, r0: float, r1: float, rng: np.random.Generator) -> Polygon:
    angles = np.sort(rng.uniform(0, 2 * np.pi, 2 * n))
    radii = np.where(np.arange(2 * n) % 2 == 0, r1, r0) * rng.uniform(0.8, 1.2, 2 * n)
    return Polygon(np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]) + rng.uniform(-50, 50, 2))


def _polygons(rng: np.random.Generator) -> list[Polygon]:
    ring = box(0, 0, 60, 40).difference(box(10, 10, 50, 30))  # a polygon with a hole
    sliver = Polygon([(0, 0), (200, 0.3), (200, 0.6), (0, 0.2)])  # long and thin: every cell is on the boundary
    tiny = box(5.1, 5.1, 5.4, 5.3)  # smaller than one cell
    return [ring, sliver, tiny, *(_star(int(rng.integers(3, 12)), 3.0, 30.0, rng) for _ in range(20))]


@pytest.mark.parametrize("cell", [0.5, 1.0, 3.7])
def test_grid_containment_equals_shapely(cell: float) -> None:
    rng = np.random.default_rng(0)
    inside_cells = 0
    for polygon in _polygons(rng):
        grid = PolygonGrid(polygon, cell=cell)
        x0, y0, x1, y1 = polygon.bounds
        points = [np.column_stack([rng.uniform(x0 - 1, x1 + 1, 5000), rng.uniform(y0 - 1, y1 + 1, 5000)])]
        for ring in (polygon.exterior, *polygon.interiors):  # vertices, edge midpoints, and just off them
            v = np.asarray(ring.coords)[:, :2]
            mid = (v[:-1] + v[1:]) / 2
            points += [v, mid, v + 1e-9, mid - 1e-9]
        gx = grid.origin[0] + np.arange(grid.shape[0] + 1) * grid.cell  # points on cell edges and corners
        gy = grid.origin[1] + np.arange(grid.shape[1] + 1) * grid.cell
        points.append(np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2))
        pts = np.concatenate(points)
        expected = shapely.contains_xy(polygon, pts[:, 0], pts[:, 1])
        np.testing.assert_array_equal(grid.contains(pts), expected)
        inside_cells += int((grid.status == 2).sum())
    assert inside_cells > 0  # the grid settles interiors itself (only boundary cells go to GEOS)
