"""``nn.utils``: gradient clipping and parameter helpers."""
__all__: list[str] = []
