"""Video data: lists and labels, class texts, decoding, sampling, transforms, datasets."""
