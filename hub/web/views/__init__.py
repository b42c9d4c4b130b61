"""HTML pages for the browser (the full UI comes later)."""
