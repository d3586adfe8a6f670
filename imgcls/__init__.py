"""imgcls: image-classification competitions from raw folders to a submission file."""
__version__ = "0.1.0"
