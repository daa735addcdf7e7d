"""The Qt editor: a view on the core document (it never duplicates core logic)."""
