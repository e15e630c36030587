"""The demo: the SynthMotion renderer, the nano-CLIP and its pretraining, the demo run (`ezclip demo`)."""
