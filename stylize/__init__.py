"""Stylize: arbitrary style transfer with a GAN and loss-weight sliders."""
__version__ = "0.1.0"
SOURCE_URL = "https://huggingface.co/spaces/stylize-gan/stylize"  # the app and this package, as deployed by scripts/deploy_space.py
