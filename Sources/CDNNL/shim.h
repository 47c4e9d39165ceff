// oneDNN (Debian libdnnl-dev 2.6) C API for samix's convolution path (Sources/SAMix/Ops/DNNLConvolution.swift).
#include <oneapi/dnnl/dnnl.h>

// Execution-argument indices and the "allocate for me" handle, as constants Swift can import.
static const int samix_dnnl_arg_src = DNNL_ARG_SRC;
static const int samix_dnnl_arg_dst = DNNL_ARG_DST;
static const int samix_dnnl_arg_weights = DNNL_ARG_WEIGHTS;
static const int samix_dnnl_arg_bias = DNNL_ARG_BIAS;
static const int samix_dnnl_arg_diff_src = DNNL_ARG_DIFF_SRC;
static const int samix_dnnl_arg_diff_dst = DNNL_ARG_DIFF_DST;
static const int samix_dnnl_arg_diff_weights = DNNL_ARG_DIFF_WEIGHTS;
static const int samix_dnnl_arg_diff_bias = DNNL_ARG_DIFF_BIAS;
static const int samix_dnnl_arg_scratchpad = DNNL_ARG_SCRATCHPAD;
static const int samix_dnnl_arg_from = DNNL_ARG_FROM;
static const int samix_dnnl_arg_to = DNNL_ARG_TO;
