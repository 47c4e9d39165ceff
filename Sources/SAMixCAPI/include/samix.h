/*
 * samix.h — C ABI of libsamix, the samix deep-learning engine (Swift, CPU).
 *
 * Conventions
 *   - Every function that can fail returns a samix_status. SAMIX_OK (0) means success; on failure
 *     samix_last_error() returns a message for the calling thread, valid until the next failing
 *     call on that thread. Errors never abort the process.
 *   - Tensors are dense, C-contiguous float32 arrays (images are NCHW) passed as a pointer plus an
 *     int64 shape. Labels are int64. The library reads/writes caller memory only during the call
 *     and never keeps pointers to it.
 *   - Objects (models, optimizers, mixing policies, trainers, schedules) are opaque 64-bit handles
 *     created by samix_*_create functions and released by the matching *_free function. A freed,
 *     zero or made-up handle is reported as SAMIX_E_INVALID_HANDLE, a handle of another kind as
 *     SAMIX_E_WRONG_HANDLE_KIND; it is never dereferenced.
 *   - Thread safety: all functions may be called from any thread. Calls that use the same handle
 *     are serialised by a per-object lock; calls on different objects run concurrently.
 *   - Randomness is explicit: stochastic functions take a seed or use a policy's own generator.
 */
#ifndef SAMIX_H
#define SAMIX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Incremented on every incompatible change of this header. */
#define SAMIX_ABI_VERSION 7

/* `alpha` argument meaning "the method's default" (NaN is an error, not the default). */
#define SAMIX_DEFAULT_ALPHA (-1.0)

/* MARK: - Status codes */

typedef int32_t samix_status;
enum {
    SAMIX_OK = 0,
    SAMIX_E_INVALID_ARGUMENT = 1,   /* a value is out of range (alpha <= 0, unknown name, ...) */
    SAMIX_E_SHAPE = 2,              /* ranks/shapes/sizes do not fit */
    SAMIX_E_NULL_POINTER = 3,       /* a required pointer is NULL */
    SAMIX_E_INVALID_HANDLE = 4,     /* handle is freed, zero or unknown */
    SAMIX_E_WRONG_HANDLE_KIND = 5,  /* handle is live but of another kind */
    SAMIX_E_OUT_OF_MEMORY = 6,
    SAMIX_E_IO = 7,                 /* file missing, unreadable or malformed */
    SAMIX_E_NUMERICAL = 8,          /* NaN/Inf where finite values are required; divergence */
    SAMIX_E_INVALID_STATE = 9,      /* operation not valid in the object's current state */
    SAMIX_E_INTERNAL = 10,          /* a bug in samix: please report */
    SAMIX_E_DISTRIBUTED = 11,       /* MPI missing or failing, ranks disagree, a rank died or hung */
    SAMIX_E_INTERRUPTED = 12        /* the calling thread's interrupt check asked to stop (Ctrl-C) */
};

/* MARK: - Handles */

typedef uint64_t samix_handle;
enum {
    SAMIX_KIND_ANY = 0,
    SAMIX_KIND_MODEL = 1,
    SAMIX_KIND_OPTIMIZER = 2,
    SAMIX_KIND_POLICY = 3,
    SAMIX_KIND_TRAINER = 4,
    SAMIX_KIND_SCHEDULE = 5,
    SAMIX_KIND_DATASET = 6,
    SAMIX_KIND_SSL = 7
};

/* Number of live handles of a kind (SAMIX_KIND_ANY: all kinds); -1 for an unknown kind. */
int64_t samix_live_handles(int32_t kind);
/* Kind of a live handle, or 0 if the handle is not live. */
int32_t samix_handle_kind(samix_handle handle);

/* MARK: - Library information and errors */

/* ABI version of the loaded library; compare with SAMIX_ABI_VERSION. */
int32_t samix_abi_version(void);
/* Package version, e.g. "0.1.0" (static string). */
const char *samix_version(void);
/* Message of the last failed call on this thread ("" if none). Owned by the library. */
const char *samix_last_error(void);
/* Status of the last failed call on this thread (0 if none). */
samix_status samix_last_error_code(void);
/* Forgets the last error of this thread. */
void samix_clear_error(void);
/* SAMIX_E_INVALID_ARGUMENT naming every invalid environment switch (SAMIX_NUM_THREADS must be an
 * integer in 1...256; SAMIX_CONV dnnl|im2col; SAMIX_CONV_ALGO default|direct|winograd;
 * SAMIX_THREAD_POOL openmp|dispatch;
 * SAMIX_WINOGRAD_MIN_CHANNELS an integer >= 1). Invalid values are never silently replaced. */
samix_status samix_check_environment(void);
/* Worker threads used by samix kernels (1...256). Default: online CPUs or $SAMIX_NUM_THREADS. */
samix_status samix_set_num_threads(int64_t n);
/* The calling thread's interrupt check (NULL removes it). Long calls that change no state the
 * caller keeps -- evaluations, samix_backbone_features, samix_backbone_knn,
 * samix_backbone_linear_probe, samix_ssl_compare_masks -- call it between batches on the calling
 * thread; a non-zero return stops the call with SAMIX_E_INTERRUPTED (output buffers then hold
 * unspecified values). Training calls stop through their record callbacks instead. */
typedef int32_t (*samix_interrupt_check)(void *user);
samix_status samix_set_interrupt_check(samix_interrupt_check check, void *user);
int64_t samix_get_num_threads(void);
/* Description of the BLAS library in use (static string). */
const char *samix_blas_info(void);

/* MARK: - Datasets
 * An in-memory uint8 image dataset (N×C×H×W pixels, labels in 0..<classes). */

/* Loads split 0 (train) or 1 (test) from a directory. kind: "auto" (or NULL), "cifar10",
 * "cifar100", "cifar100-coarse", "idx" (MNIST/Fashion-MNIST IDX files, .gz or plain). CIFAR files
 * must hold the official record counts (10000 per CIFAR-10 batch; CIFAR-100 50000/10000) unless
 * allow_partial is non-zero (custom subsets). */
samix_status samix_dataset_load(const char *directory, int32_t split, const char *kind,
                                int32_t allow_partial, samix_handle *out);
/* A dataset from caller arrays (copied): pixels count×channels×height×width, labels count. */
samix_status samix_dataset_create(const uint8_t *pixels, const int64_t *labels, int64_t count,
                                  int64_t channels, int64_t height, int64_t width,
                                  int64_t num_classes, samix_handle *out);
/* out[5] = {count, channels, height, width, num_classes}. */
samix_status samix_dataset_shape(samix_handle dataset, int64_t *out);
/* Copies the pixels (pixel_count bytes) and labels (label_count entries; sizes must match). */
samix_status samix_dataset_copy(samix_handle dataset, uint8_t *pixels, int64_t pixel_count,
                                int64_t *labels, int64_t label_count);
/* Writes "name\nclass0\nclass1..." + NUL into buf (capacity cap; cap 0 only reports *needed). */
samix_status samix_dataset_info(samix_handle dataset, char *buf, int64_t cap, int64_t *needed);
samix_status samix_dataset_free(samix_handle dataset);

/* MARK: - Models
 * Image classifiers (backbone + global-average-pool + linear head) from the engine's model zoo.
 * Names: resnet20, resnet32, resnet44, resnet56, resnet110 (CIFAR ResNets), resnet18, resnet34,
 * preactresnet18, wrn28_k (Wide-ResNet-28-k, e.g. wrn28_10). */

samix_status samix_model_create(const char *name, int64_t num_classes, int64_t in_channels,
                                uint64_t seed, samix_handle *out);
samix_status samix_model_free(samix_handle model);
/* out[4] (may be NULL) = {num_classes, in_channels, parameter scalars, state-dict entries};
 * the architecture name + NUL goes into arch (capacity cap; cap 0 only reports *needed). */
samix_status samix_model_info(samix_handle model, int64_t *out, char *arch, int64_t cap,
                              int64_t *needed);
/* Training mode (1: batch statistics, BN running statistics updated) or evaluation mode (0). */
samix_status samix_model_set_training(samix_handle model, int32_t training);
samix_status samix_model_is_training(samix_handle model, int32_t *out);
/* Logits (N×num_classes, logits_count floats) of a finite N×C×H×W batch, in the current mode,
 * without recording gradients. */
samix_status samix_model_forward(samix_handle model, const float *x, const int64_t *shape,
                                 float *logits, int64_t logits_count);
/* samix_model_forward in an explicit mode for this call only: mode -1 = current, 0 = evaluation,
 * 1 = training. The model's stored mode is unchanged afterwards; the switch happens under the
 * model's lock, so concurrent calls on the same model never observe it. */
samix_status samix_model_forward_mode(samix_handle model, const float *x, const int64_t *shape,
                                      float *logits, int64_t logits_count, int32_t mode);
/* Mean cross-entropy of (x, labels[N]) into *loss and its gradient w.r.t. every parameter,
 * concatenated in state-dict parameter order, into grads (exactly the model's parameter count).
 * Runs in the model's current mode (training mode updates BN running statistics). */
samix_status samix_model_loss_grad(samix_handle model, const float *x, const int64_t *shape,
                                   const int64_t *labels, double label_smoothing, double *loss,
                                   float *grads, int64_t grads_count);
/* State dict entry `index` (parameters first, then buffers such as BN running statistics):
 * name into buf, shape into shape[8] with *rank dims, *is_parameter (any output may be NULL). */
samix_status samix_model_state_entry(samix_handle model, int64_t index, char *buf, int64_t cap,
                                     int64_t *needed, int64_t *shape, int64_t *rank,
                                     int32_t *is_parameter);
/* Copies entry `index` (exactly count floats) into out. */
samix_status samix_model_state_get(samix_handle model, int64_t index, float *out, int64_t count);
/* Loads n entries: names[i], values[i] (finite floats), ranks[i], shapes packed (sum of ranks).
 * strict = 1: entries must match the model's names exactly. */
samix_status samix_model_load_state(samix_handle model, int64_t n, const char *const *names,
                                    const float *const *values, const int64_t *ranks,
                                    const int64_t *shapes, int32_t strict);

/* MARK: - Checkpoints
 * safetensors files (F32 tensors, JSON header, "__metadata__" string map), readable by the
 * safetensors library and by plain NumPy. Saves are atomic: the file is written to a temporary file
 * in the same directory, fsync'ed and renamed, so a crash mid-save never destroys an existing
 * file. Loads validate the whole file first and change nothing on failure. */

/* Saves the model's state dict (parameters, then buffers, under their dotted names) with metadata
 * architecture, num_classes, in_channels, plus n caller key/value pairs (UTF-8 strings). */
samix_status samix_model_save(samix_handle model, const char *path, int64_t n,
                              const char *const *keys, const char *const *values);
/* Loads a model file (or the model part of a trainer checkpoint) into the model; the saved
 * architecture/num_classes/in_channels must match. strict = 1: names must match exactly. */
samix_status samix_model_load(samix_handle model, const char *path, int32_t strict);
/* The file's __metadata__ as a JSON object + NUL into buf (capacity cap; cap 0 only reports
 * *needed). Reads only the header. */
samix_status samix_checkpoint_metadata(const char *path, char *buf, int64_t cap, int64_t *needed);
/* What a front end needs to rebuild the trainer of a trainer checkpoint, read by the engine from its
 * metadata, as a JSON object + NUL into buf (capacity cap; cap 0 only reports *needed):
 * {"architecture", "num_classes", "in_channels", "seed", "config": {"mix", "alpha" (null = the
 * method's default), "label_smoothing", "optimizer", "lr", "momentum", "weight_decay", "nesterov"
 * (bool), "schedule", "warmup_steps", "learned_method", "learned_options" (null unless learned)}}.
 * A file that is not a trainer checkpoint, or lacks or has invalid settings, is
 * SAMIX_E_INVALID_ARGUMENT. */
samix_status samix_trainer_checkpoint_config(const char *path, char *buf, int64_t cap, int64_t *needed);
/* Saves everything needed to resume training exactly: model, optimizer state, the objective's
 * modules (Mixer, momentum networks), epochs/steps done, learning rate, input normalisation, the
 * trainer's creation arguments (metadata "config.*") and n caller key/value pairs. */
samix_status samix_trainer_save(samix_handle trainer, const char *path, int64_t n,
                                const char *const *keys, const char *const *values);
/* Restores a checkpoint saved by samix_trainer_save into a trainer of the same architecture,
 * class count, channels, objective, optimizer type and seed. Unless allow_changed_settings is
 * non-zero, the checkpoint must also come from the same run: every setting stored with it
 * (creation arguments, optimizer hyper-parameters, schedule) equal to this trainer's, and the next
 * training epoch must use the same epochs, samples and batches per epoch (else
 * SAMIX_E_INVALID_ARGUMENT naming the first differing setting). */
samix_status samix_trainer_load(samix_handle trainer, const char *path, int32_t allow_changed_settings);

/* MARK: - Mixing policies
 * A policy handle owns its policy and a seeded generator; successive samix_policy_mix calls
 * continue one reproducible random stream. Conventions: lambda is the weight of the ORIGINAL
 * sample i, 1 - lambda that of its partner x[partner[i]]; masks hold the PARTNER weight per pixel. */

/* method: "mixup", "cutmix", "smoothmix", "resizemix", "gridmix", "fmix", "saliencymix".
 * alpha: Beta(alpha, alpha) parameter, SAMIX_DEFAULT_ALPHA = the method's default (OpenMixup CIFAR value);
 * NaN or other values <= 0 are SAMIX_E_INVALID_ARGUMENT.
 * per_sample: 1 = one lambda (and box/mask) per sample instead of one per batch.
 * partner: 0 = method default, 1 = random permutation, 2 = derangement, 3 = flip, 4 = roll. */
samix_status samix_policy_create(const char *method, double alpha, int32_t per_sample,
                                 int32_t partner, uint64_t seed, samix_handle *out);
/* timm's Mixup/CutMix switcher (timm.data.Mixup arguments). minmax_lo/hi: NaN, NaN = none;
 * mode: 0 batch, 1 pair, 2 elem. */
samix_status samix_policy_create_timm(double mixup_alpha, double cutmix_alpha, double minmax_lo,
                                      double minmax_hi, double prob, double switch_prob,
                                      int32_t mode, int32_t correct_lam, double label_smoothing,
                                      int64_t num_classes, uint64_t seed, samix_handle *out);
samix_status samix_policy_free(samix_handle policy);
/* set = 0: *state = generator state; set = 1: generator state = *state. */
samix_status samix_policy_rng_state(samix_handle policy, uint64_t *state, int32_t set);
/* Mixes a float batch x (shape[4]: N,C,H,W, or N,H,W,C when channels_last = 1) into out
 * (out == x mixes in place; partial overlap is an error). NaN/Inf pixels propagate into the output,
 * except for "saliencymix", whose saliency needs finite pixels (SAMIX_E_NUMERICAL). lambda: NaN = sample it, else fixed in
 * [0, 1]. Optional outputs (NULL = skip): targets N×num_classes soft targets of labels[N] with
 * label_smoothing in [0, 1) (labels required then); lam[N] realised weight of the original;
 * label_lam[N] its weight in the targets; partner[N]; masks N×H×W partner-weight maps;
 * boxes N×4 (y0, y1, x0, x1; -1 when the sample has no box). */
samix_status samix_policy_mix(samix_handle policy, const float *x, float *out, const int64_t *shape,
                              int32_t channels_last, const int64_t *labels, int64_t num_classes,
                              double label_smoothing, double lambda, float *targets, float *lam,
                              float *label_lam, int64_t *partner, float *masks, int64_t *boxes);
/* One-shot samix_policy_create(method, alpha, per_sample, partner_mode, seed) + samix_policy_mix(...,
 * lambda, ...) + samix_policy_free, without registering a handle (samix.mix). Arguments and results as
 * those two functions. */
samix_status samix_mix(const char *method, double alpha, int32_t per_sample, int32_t partner_mode, uint64_t seed,
                       const float *x, float *out, const int64_t *shape, int32_t channels_last,
                       const int64_t *labels, int64_t num_classes, double label_smoothing, double lambda,
                       float *targets, float *lam, float *label_lam, int64_t *partner, float *masks,
                       int64_t *boxes);
/* timm Mixup's hot path (policy from samix_policy_create_timm): mixes the float N×C×H×W batch x
 * (shape[4]) in place and writes targets N×num_classes soft targets of labels[N], with the policy's
 * num_classes and label_smoothing. Same draws and results as samix_policy_mix(policy, x, x, shape, 0,
 * labels, num_classes, label_smoothing, NaN, targets, NULL, NULL, NULL, NULL, NULL); an other policy is
 * SAMIX_E_INVALID_ARGUMENT. */
samix_status samix_policy_mix_timm(samix_handle policy, float *x, const int64_t *shape, const int64_t *labels,
                                   float *targets);
/* Model-based input mixing: method "attentivemix" (top-k cells of the model's last-stage attention)
 * or "puzzlemix" (saliency |d CE / dx| + block labelling + transport). The classifier runs in eval
 * mode; its parameters and gradients are untouched. x: finite N×C×H×W float batch the model consumes
 * (shape[4]); out: N×C×H×W (may be x). labels[N] (in the model's classes): required by PuzzleMix
 * (saliency) and with targets; alpha SAMIX_DEFAULT_ALPHA =
 * default (2 / 1); seed seeds this call's random draws; lambda NaN = sampled. Optional outputs as
 * samix_policy_mix (masks = partner weight per pixel; for PuzzleMix the images include its transport). */
samix_status samix_model_policy_mix(samix_handle model, const char *method, double alpha, uint64_t seed,
                                    const float *x, float *out, const int64_t *shape,
                                    const int64_t *labels, int64_t num_classes, double label_smoothing,
                                    double lambda, float *targets, float *lam, float *label_lam,
                                    int64_t *partner, float *masks);

/* MARK: - Trainers
 * The engine's supervised training loop over a model handle (the trainer shares the model's lock).
 * mix: "vanilla", "mixup", "cutmix", "fmix", "gridmix", "resizemix", "smoothmix", "saliencymix",
 * "manifoldmix" (NULL = vanilla); alpha SAMIX_DEFAULT_ALPHA = the method's default. optimizer: "sgd" (NULL) or
 * "adamw"; schedule: "cosine" (NULL, to 0 over all steps), "cosine:min_lr=X" (to X) or "constant",
 * with linear warm-up. */
samix_status samix_trainer_create(samix_handle model, const char *mix, double alpha,
                                  double label_smoothing, const char *optimizer, double lr,
                                  double momentum, double weight_decay, int32_t nesterov,
                                  const char *schedule, int64_t warmup_steps, uint64_t seed,
                                  samix_handle *out);
samix_status samix_trainer_free(samix_handle trainer);
/* Called with one record as NUL-terminated text; return non-zero to stop (see each function). It runs
 * on the calling thread while the object's lock is held: it must not call functions on the same
 * model, trainer or SSL model. The text is valid only during the call. */
typedef int32_t (*samix_record_callback)(void *user, const char *record);
/* The training loop, run in the engine: trains until `epochs` epochs are done (epochs also sizes the
 * schedule; an epoch an earlier call stopped in is continued at its next batch; nothing is done when
 * the trainer is already there), evaluating every network (samix_trainer_heads) on the validation
 * set after each epoch.
 * Data: each set is either a uint8 dataset handle (train_dataset / val_dataset != 0; normalised with
 * the statistics of the first training data) or a finite float32 array x (shape[4] = N, C, H, W;
 * already normalised; read in place during the call, never modified) with labels[N] in
 * [0, num_classes) -- never both. The validation set is optional (0 and NULLs). augment = 1: random
 * crop (zero padding 4 for 3 channels, else 2) + horizontal flip, drawn from the trainer's seed, the
 * epoch and the sample position; shuffling follows (seed, epoch); the last partial batch is dropped
 * when N > batch_size. eval_batch_size: batch size of the evaluations.
 * Records: `callback` (may be NULL) receives one JSON object per record:
 *   after every step when step_records = 1:
 *     {"type": "step", "epoch": E (1-based), "step": S (0-based in the epoch), "steps": per epoch,
 *      "loss": L, "lr": LR}
 *   after every finished epoch (after its evaluation):
 *     {"type": "epoch", "epoch": E, "loss": mean, "lr": last, "seconds": training time,
 *      "steps_done": N, "metrics": {name: mean of the objective's step metric},
 *      "evaluations": {"val": {"online": {"loss", "accuracy", "count"}, "momentum": {...}, ...}}}
 *   (compact JSON; a non-finite number is written null). A non-zero return stops the run cleanly and
 *   the call returns SAMIX_OK: after a step record, the run stops after that step -- the epoch is
 *   not counted as done (samix_trainer_progress) and the next call continues it; a stop at the
 *   epoch's last step lets the epoch finish, recorded without evaluations; after an epoch record,
 *   the run stops after that epoch. */
samix_status samix_trainer_fit(samix_handle trainer,
                               samix_handle train_dataset, const float *train_x, const int64_t *train_shape,
                               const int64_t *train_labels,
                               samix_handle val_dataset, const float *val_x, const int64_t *val_shape,
                               const int64_t *val_labels,
                               int64_t epochs, int64_t batch_size, int32_t augment, int64_t eval_batch_size,
                               int32_t step_records, samix_record_callback callback, void *user);
/* Mean cross-entropy and top-1 accuracy of the model (evaluation mode) on a float32 batch x
 * (N, C, H, W, used as given) with labels[N]. */
samix_status samix_trainer_evaluate_array(samix_handle trainer, const float *x, const int64_t *shape,
                                          const int64_t *labels, int64_t batch_size, double *loss,
                                          double *accuracy);
/* Mean cross-entropy and top-1 accuracy (in [0, 1]) of the model in evaluation mode. */
samix_status samix_trainer_evaluate(samix_handle trainer, samix_handle dataset, int64_t batch_size,
                                    double *loss, double *accuracy);
/* out[2] = {epochs done, steps done}. */
samix_status samix_trainer_progress(samix_handle trainer, int64_t *out);
/* One training step of the trainer's objective on a float batch x (N×C×H×W, used as given: no
 * normalisation or augmentation; not modified) with labels[N]. total_steps > 0 sets the learning
 * rate from the schedule at the trainer's current step; 0 keeps the optimizer's rate. */
samix_status samix_trainer_train_step(samix_handle trainer, const float *x, const int64_t *shape,
                                      const int64_t *labels, int64_t total_steps, double *loss);

/* MARK: - Learned mixing (AutoMix, SAMix, SAMix^P)
 * method: "automix", "samix" or "samix-p" (a saved, frozen Mixer trains a new network without the
 * online Mixer training). options: "key=value" lines (NULL or "" = the CIFAR configs), OpenMixup
 * names: alpha, momentum, momentum_end, momentum_constant_fraction, momentum_reference_steps
 * (integer or none), mask_layer, mask_loss (weight), mask_loss_mode (L1, L1+Variance, L2+Variance,
 * Sparsity), mask_loss_margin, mask_loss_variance_weight, mask_loss_scope (batch = the reference,
 * sample), mask_adjust, mask_adjust_uses_mixer_lambda, lam_margin, mixer_loss (eta_balanced,
 * official, bce; eta applies to eta_balanced and bce), eta, lam_mul_k (comma list, samix),
 * value_dropout (samix), lam_concat (automix), switch_off, mix_shuffle_no_repeat, head_init_std,
 * reinit_online_head, evaluate_mix_heads, momentum_stops_at_mask_layer, mixer_seed;
 * samix-p: path, alpha, lam_margin, mask_adjust, batch_statistics. Unknown keys are errors.
 * schedule of samix_trainer_create_learned: "cosine" (NULL) anneals to the method's reference
 * floor, 0.5 × lr (OpenMixup's 0.1 → 0.05); "cosine:min_lr=X" to X; "constant". */

/* Validates method + options without creating anything (samix-p also reads the file). */
samix_status samix_learned_check(const char *method, const char *options);
/* The engine's option schema (every option's name, type, default, range or choices and one-line
 * doc; the one declaration the C ABI, the CLI and Python read) of a group — "learned",
 * "pretrained", "ssl", "trainer" — one method of it ("learned:samix", "ssl:mixup") or "all", as JSON + NUL
 * into buf (capacity cap; cap 0 only reports *needed). */
samix_status samix_option_schema(const char *group, char *buf, int64_t cap, int64_t *needed);
/* The engine's default options of "automix" / "samix" as "key=value" lines + NUL into buf
 * (capacity cap; cap 0 only reports *needed). */
samix_status samix_learned_defaults(const char *method, char *buf, int64_t cap, int64_t *needed);
/* A trainer (see samix_trainer_create) whose objective is the learned mixing method. */
samix_status samix_trainer_create_learned(samix_handle model, const char *method, const char *options,
                                          const char *optimizer, double lr, double momentum,
                                          double weight_decay, int32_t nesterov, const char *schedule,
                                          int64_t warmup_steps, uint64_t seed, samix_handle *out);
/* Names of the networks a trainer reports, one per line ("online", then e.g. "momentum"), + NUL
 * into buf (capacity cap; cap 0 only reports *needed); their number into *count. */
samix_status samix_trainer_heads(samix_handle trainer, char *buf, int64_t cap, int64_t *needed,
                                 int64_t *count);
/* Mean cross-entropy and top-1 accuracy of every head (samix_trainer_heads order; count = number of
 * heads) on a float32 batch (N, C, H, W, used as given) or on a uint8 dataset handle. */
samix_status samix_trainer_evaluate_heads_array(samix_handle trainer, const float *x, const int64_t *shape,
                                                const int64_t *labels, int64_t batch_size, double *losses,
                                                double *accuracies, int64_t count);
samix_status samix_trainer_evaluate_heads(samix_handle trainer, samix_handle dataset, int64_t batch_size,
                                          double *losses, double *accuracies, int64_t count);
/* The partner masks (N×1×H×W floats in [0, 1], weight of x[partner[i]] per pixel) the trainer's
 * Mixer makes for a float batch x (N ≥ 2, used as given) at lam in [0, 1] (weight of the original)
 * with partner[N] (a permutation; NULL = drawn from seed). Changes no weight or statistic. */
samix_status samix_trainer_mixer_masks(samix_handle trainer, const float *x, const int64_t *shape,
                                       double lam, const int64_t *partner, uint64_t seed, float *masks,
                                       int64_t mask_count);
/* Saves the Mixer and the encoder feeding it (for method "samix-p", option path). */
samix_status samix_trainer_save_mixer(samix_handle trainer, const char *path);

/* MARK: - Self-supervised learning (MoCo v2, + Mixup, SAMix-I, SAMix-C)
 * mix: "none" (NULL), "mixup" or "samix". options: "key=value" lines: queue_size (4096),
 * temperature (0.2), momentum (key encoder EMA, 0.99), neck_hidden (2048), embedding_dim (128),
 * neck_bn, shuffle_bn_groups (2); mixup: alpha; samix: alpha, variant (instance, cluster), eta,
 * mask_layer, mask_loss, mask_loss_mode, mask_loss_margin, lam_mul_k, value_dropout, mixer_loss,
 * clusters, kmeans_iterations, kmeans_warm_start, mask_adjust (auto, auto_label, off or a
 * probability), mean_margin, positive_extension (off, interpolate, extrapolate, both); SAMix-C:
 * cluster_features (query = the reference, key), cluster_pca_dim (256 = the reference's PCA
 * whitening; none = L2-normalised features only), detach_cluster_head_mixed (0 = the reference:
 * the cluster head's mixup CE also reaches the Mixer). */
samix_status samix_ssl_create(const char *architecture, int64_t in_channels, const char *mix,
                              const char *options, uint64_t seed, samix_handle *out);
samix_status samix_ssl_free(samix_handle ssl);
/* Pre-trains for `epochs` epochs (a full cosine schedule per call) on a uint8 dataset (labels used
 * only as the kNN memory bank); val (0 = none) is the kNN query set, monitored every knn_every
 * epochs and after the last (0 = never). checkpoint (NULL = none): a trainer checkpoint rewritten
 * atomically after every epoch and resumed from when the file exists, so the same call continues
 * bit-identically after an interruption (encoders, Mixer, cluster heads, queue, SGD state).
 * Records: `callback` receives "key=value" lines (samix_record_callback): after every finished
 * epoch (epoch, loss, lr, seconds, steps, knn_top1 when monitored, kmeans_inertia for SAMix-C, step
 * metrics), and when step_records = 1 after every step ("type=step", epoch, step, steps, loss).
 * A non-zero return stops cleanly and the call returns SAMIX_OK: after a step record the run stops
 * after that step -- an unfinished epoch is neither counted nor recorded nor checkpointed (continue
 * by repeating the call with the same checkpoint); at the epoch's last step, or after an epoch
 * record, the epoch is recorded (without the kNN monitor when stopped at its last step). A call
 * stopped early does not count as a call, so repeating it uses the same seed. A call stopped at
 * an epoch boundary is also kept in memory: the next call with the same arguments and the same
 * dataset handles continues it (this is how callers run their own code between epochs with no
 * call active); any other call starts a new run. */
samix_status samix_ssl_fit(samix_handle ssl, samix_handle train, samix_handle val, int64_t epochs,
                           int64_t batch_size, double lr, double weight_decay, int64_t knn_every,
                           int64_t knn_k, double knn_temperature, const char *checkpoint,
                           int32_t step_records, samix_record_callback callback, void *user);
/* Saves the query backbone with n caller key/value pairs. */
samix_status samix_ssl_save_backbone(samix_handle ssl, const char *path, int64_t n,
                                     const char *const *keys, const char *const *values);
/* SAMix-I/C: scores the Mixer's masks against the same masks on other pairs, Mixup and CutMix
   under the Mixer objective on `batches` batches of `dataset` (the data of the last fit); calls
   `callback` once per mask kind with "key=value" lines. */
samix_status samix_ssl_compare_masks(samix_handle ssl, samix_handle dataset, int64_t batches,
                                     int64_t batch_size, uint64_t seed, samix_record_callback callback,
                                     void *user);
/* SAMix-I/C: saves the Mixer and its key encoder (the file of samix_trainer_save_mixer). */
samix_status samix_ssl_save_mixer(samix_handle ssl, const char *path);
/* Loads a saved backbone into a model of the same architecture and channels (head unchanged). */
samix_status samix_model_load_backbone(samix_handle model, const char *path);
/* Frozen-backbone evaluation of an SSL model or a model handle (evaluation mode; uint8 datasets
 * normalised with the SSL pre-training statistics, else those of the first dataset). */
/* GAP features (count = N × dim floats; count 0 only reports *dim); l2 = 1: unit-norm rows. */
samix_status samix_backbone_features(samix_handle encoder, samix_handle dataset, int32_t l2, float *out,
                                     int64_t count, int64_t *dim);
/* Weighted kNN top-1: bank = train, queries = test. */
samix_status samix_backbone_knn(samix_handle encoder, samix_handle train, samix_handle test, int64_t k,
                                double temperature, double *accuracy);
/* Linear probe (SGD momentum, cosine schedule); scaling "l2" (NULL), "none", "standardize". */
samix_status samix_backbone_linear_probe(samix_handle encoder, samix_handle train, samix_handle test,
                                         int64_t epochs, int64_t batch_size, double lr, double momentum,
                                         double weight_decay, const char *scaling, uint64_t seed,
                                         double *train_accuracy, double *test_accuracy);

/* ---- Distributed training (Open MPI) ----
 * libmpi is loaded at run time, only when the process was started by mpirun (Open MPI sets
 * OMPI_COMM_WORLD_SIZE) or SAMIX_DISTRIBUTED=mpi; SAMIX_DISTRIBUTED=off never loads it. A single
 * process is rank 0 of 1. Collectives wait at most SAMIX_DISTRIBUTED_TIMEOUT seconds (default 300),
 * then the job is aborted naming the operation. Failures are SAMIX_E_DISTRIBUTED. */

/* out[2] = {rank, size}. */
samix_status samix_distributed_info(int64_t *out);
samix_status samix_distributed_barrier(void);
/* In-place all-reduce of count values over every rank; dtype 0 = float32 (op sum), 1 = float64
 * (op 0 = sum, 1 = max, 2 = min). */
samix_status samix_distributed_allreduce(void *data, int64_t count, int32_t dtype, int32_t op);
/* Makes the trainer data-parallel when running under mpirun with more than one rank (every rank
 * must call it with the same model and settings; rank 0's parameters are copied to every rank):
 * each rank trains on its shard of every global batch, gradients are averaged over ranks, and
 * sync_bn != 0 computes BatchNorm statistics over the global batch. bucket_cap_mb: largest gradient
 * bucket in MiB whose all-reduce starts while backward still runs (PyTorch DDP's bucket_cap_mb);
 * 0 = one all-reduce after backward; < 0 = the default, 25 (DDP's). *out_active = 1 if now
 * data-parallel (NULL allowed). Ranks that disagree on the model or settings get SAMIX_E_DISTRIBUTED. */
samix_status samix_trainer_distribute(samix_handle trainer, int32_t sync_bn, double bucket_cap_mb,
                                      int32_t *out_active);

#ifdef __cplusplus
}
#endif

#endif /* SAMIX_H */
