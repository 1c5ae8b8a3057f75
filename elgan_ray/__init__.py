"""elgan_ray: reproduce, ablate and stress-test EL-GAN lane segmentation on Ray."""

__version__ = "0.1.0"
