"""Lesion generators, one module per lesion type.

Each exposes ``insert(head, rng, **params) -> LesionSet``: it paints `LesionTissue` codes into
``head.labels`` (in place) and returns the instance map and one record per lesion.
"""
