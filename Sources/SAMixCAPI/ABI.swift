import SAMix
