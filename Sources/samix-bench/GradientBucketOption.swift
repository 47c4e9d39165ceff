import ArgumentParser
import SAMix

/// `--bucket-cap-mb` of the commands that train data-parallel (train, ssl, scale).
struct GradientBucketOption: ParsableArguments {
    @Option(help: ArgumentHelp("Under mpirun: largest gradient bucket in MiB; a bucket's all-reduce starts while backward still runs (PyTorch DDP's bucket_cap_mb; 0 = one all-reduce after backward).",
                               valueName: "MiB"))
    var bucketCapMb: Double = DataParallel.defaultBucketCapMB
}
