"""The live dashboard on the admin listener: server-rendered pages, SVG charts, live updates."""
