"""Binary codes: the recurrent binarizer (BEBR) and its numpy reference."""
from .binarizer import RecurrentBinarizer

__all__ = ["RecurrentBinarizer"]
