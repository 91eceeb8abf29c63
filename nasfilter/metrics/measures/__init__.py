"""One module per measure (or family of measures); each registers its metrics with
``@metric`` when imported. Every module here is discovered and imported by the registry;
none may import torch at import time (import it inside the functions)."""
