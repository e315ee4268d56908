"""Stylize: arbitrary style transfer with a GAN and loss-weight sliders."""
__version__ = "0.1.0"
