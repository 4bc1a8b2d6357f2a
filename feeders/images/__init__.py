"""Image files as Keras batches: `ImageFileSequence` and the decoders it chooses from by name."""

from feeders.images._shared import ImageTooLargeError
from feeders.images.decode import (
    DECODERS,
    Decoder,
    decode_pil,
    decode_skimage,
    decode_tf,
    tf_decode_fn,
)
from feeders.images.directory import IMAGE_EXTENSIONS
from feeders.images.fast_decode import decode_opencv, decode_simplejpeg
from feeders.images.files import ImageDecodeError, ImageFileSequence, SkippedFile

__all__ = [
    "DECODERS",
    "IMAGE_EXTENSIONS",
    "Decoder",
    "ImageDecodeError",
    "ImageFileSequence",
    "ImageTooLargeError",
    "SkippedFile",
    "decode_opencv",
    "decode_pil",
    "decode_simplejpeg",
    "decode_skimage",
    "decode_tf",
    "tf_decode_fn",
]
