import SAMix
print("samix-bench")
