// The umbrella module: `import SAMix` gives the whole engine. Each layer is its own SwiftPM target and
// imports only the layers below it (the compiler rejects an upward import):
//
//   SAMixCore      tensors, buffers, autodiff, errors, random numbers, threads, file formats
//   SAMixOps       kernels and differentiable ops (OpenBLAS / oneDNN), mask mixing
//   SAMixNN        layers, models, optimizers, schedules
//   SAMixData      datasets, augmentation, loaders
//   SAMixMixing    hand-crafted and model-based mixing policies
//   SAMixTraining  objectives, learned mixing (AutoMix / SAMix), self-supervised training, checkpoints
@_exported import SAMixCore
@_exported import SAMixOps
@_exported import SAMixNN
@_exported import SAMixData
@_exported import SAMixMixing
@_exported import SAMixTraining
