"""One module per area of the portal."""
