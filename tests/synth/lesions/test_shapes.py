import numpy as np

from neurolesion.synth.lesions import shapes


def test_ellipsoid_volume_matches_formula() -> None:
    m = shapes.ellipsoid((41, 41, 41), (20, 20, 20), (10.0, 6.0, 4.0), (0.5, 0.5, 0.5))
    expected = 4 / 3 * np.pi * 10 * 6 * 4
    assert abs(m.sum() * 0.125 - expected) / expected < 0.05


def test_rotation_is_orthonormal() -> None:
    r = shapes.random_rotation(np.random.default_rng(1))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-10)
    assert np.isclose(np.linalg.det(r), 1.0)
    t = shapes.rotation_towards((0, 0, 2))
    np.testing.assert_allclose(t[:, 2], [0, 0, 1])


def test_smooth_field_is_standardised_and_smooth() -> None:
    f = shapes.smooth_field((40, 30, 20), 8.0, (1.0, 1.0, 1.0), np.random.default_rng(0))
    assert f.shape == (40, 30, 20)
    assert abs(f.mean()) < 1e-5 and abs(f.std() - 1) < 1e-4
    assert np.abs(np.diff(f, axis=0)).mean() < 0.5


def test_lobulated_blob_is_connected_and_contains_centre() -> None:
    rng = np.random.default_rng(2)
    b = shapes.lobulated_blob((21, 21, 21), (10, 10, 10), (6.0, 4.0, 4.0), (1.0, 1.0, 1.0), rng, 0.4)
    assert b[10, 10, 10]
    np.testing.assert_array_equal(shapes.largest_component(b), b)


def test_sphere_cluster_index_covers_mask() -> None:
    rng = np.random.default_rng(3)
    m, idx = shapes.sphere_cluster((25, 25, 25), (12, 12, 12), 10.0, (1.0, 1.0, 1.0), rng, 5)
    np.testing.assert_array_equal(m, idx > 0)
    assert idx.max() <= 6


def test_tube_radius_and_path_length() -> None:
    rng = np.random.default_rng(4)
    path = shapes.smooth_path((0, 0, 0), (0, 0, 1), 20.0, rng, curvature=0.0)
    assert np.isclose(np.linalg.norm(path[-1] - path[0]), 20.0, atol=0.6)
    pts = path + np.array([10.0, 10.0, 5.0])
    t = shapes.tube((21, 21, 30), pts, 1.0, (1.0, 1.0, 1.0))
    assert t[10, 10, 5:25].all()
    assert t.sum() <= 5 * 22


def test_shell_is_outside_and_thin() -> None:
    m = shapes.ellipsoid((21, 21, 21), (10, 10, 10), (5.0, 5.0, 5.0), (1.0, 1.0, 1.0))
    s = shapes.shell(m, 1.0, (1.0, 1.0, 1.0))
    assert not (s & m).any() and s.any()
