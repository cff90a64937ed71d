/* nnrt_host.h — the trainer program's side of the nnc runtime: the
 * command line, data sets, safetensors checkpoints, logs and progress, and
 * the trainer every generated main() runs (nnrt_train_main).
 *
 * libnnrt-host.a holds them; it needs cJSON, zlib and the kernel library
 * (libnnrt.a, nnrt.h). A generated model includes this header only for its
 * main() and its checkpoint functions (NAME_save, NAME_load); a program
 * that embeds a model without those needs nnrt.h alone.
 */
#ifndef NNRT_HOST_H
#define NNRT_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt.h"

/* ---- safetensors.c: weights in the safetensors format ----
 * File: 8-byte little-endian header length, a JSON header (written and read
 * with cJSON) mapping each tensor name to dtype, shape and data_offsets, then
 * the raw little-endian float32 data. Names are PyTorch's state_dict names. */

/* Writes the n tensors as F32, in the order given (and, if not NULL, string
 * metadata as "__metadata__": meta_keys[i] -> meta_vals[i], nmeta pairs) to
 * path atomically: a temporary file in the same directory, fsync, rename.
 * The previous file stays intact on any failure. Returns 0, or -1 with a
 * message in err naming the file and the reason. */
int nnrt_save_safetensors(const char *path, const nnrt_tensor *t, int n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          int nmeta, char *err, size_t errlen);

/* An opened safetensors file, read whole into memory and checked entirely on
 * open. F64, F16 and BF16 tensors are converted to float32; the data of every
 * tensor is 64-byte aligned and owned by the nnrt_st_file. */
typedef struct nnrt_st_file nnrt_st_file;
/* NULL on error, with a message in err naming the file and the problem */
nnrt_st_file *nnrt_st_open(const char *path, char *err, size_t errlen);
/* the tensor called name, or NULL if the file has none or it is not a float
 * tensor (an integer or bool dtype) */
const nnrt_tensor *nnrt_st_get(const nnrt_st_file *f, const char *name);
int nnrt_st_count(const nnrt_st_file *f);
/* tensor i (0 <= i < count) in the header's order, or NULL; its data is NULL
 * if its dtype is not a float (an I64 tensor's values are in i64) */
const nnrt_tensor *nnrt_st_at(const nnrt_st_file *f, int i);
/* the metadata value for key, or NULL */
const char *nnrt_st_meta(const nnrt_st_file *f, const char *key);
void nnrt_st_close(nnrt_st_file *f);

/* Loads every tensor of t[] (by name) from path, copying into t[i].data.
 * Refuses the file, changing nothing, if any tensor is missing (but a count,
 * an i64 tensor, which then keeps its value), has another
 * shape or a non-float dtype, or if the file holds a tensor t[] lacks (a
 * checkpoint of another model); err then names the mismatches (six, and how
 * many more). Returns 0 or -1. */
int nnrt_load_safetensors(const char *path, const nnrt_tensor *t, int n,
                          char *err, size_t errlen);
/* Loads a checkpoint: the n tensors of t (the weights), and the nstate
 * tensors of state (the optimizer's) too when the file holds any of them
 * or need_state is set; then every one of them must fit. A PyTorch
 * state_dict, without the optimizer's state, loads the weights alone. As
 * nnrt_load_safetensors: all or nothing, 0 or -1 with the mismatches in err,
 * which says so when the file is a checkpoint of a model other than model
 * (its metadata's name; model may be NULL). */
int nnrt_load_checkpoint(const char *path, const char *model, const nnrt_tensor *t, int n,
                         const nnrt_tensor *state, int nstate, int need_state, char *err, size_t errlen);

/* ---- args.c: the trainer's command line ---- */

/* The trainer's command line (nnrt_train_main fills it with nnrt_parse_args). */
typedef struct nnrt_args {
    long steps;           /* --steps N    (default given by the model) */
    int batch;            /* --batch N    */
    int batch_given;      /* --batch was given (the tutorial's loop on --data: else the whole file) */
    float lr;             /* --lr X       */
    uint64_t seed;        /* --seed N     */
    const char *save;     /* --save FILE  */
    const char *load;     /* --load FILE  */
    const char *data;     /* --data FILE  safetensors with "input" [N,...] and "target" [N,...] */
    const char *dump;     /* --dump FILE  after training: output, loss, weights and gradients */
    long print_every;     /* --print-every N */
    int quiet;            /* --quiet */
    int nan_check;        /* --nan-check: check every layer's output at every step, stop at the first NaN or inf */
    /* The commands (train, eval, predict) and their flags. A command, when
     * there is one, is the first argument; it sets its own defaults (train:
     * --batch 64 --epochs 1, no step limit; every command: pad and index -1,
     * "not given"). */
    const char *command;  /* NULL (the tutorial's loop), "train", "eval", "predict" or "sample" */
    long epochs;          /* --epochs N */
    const char *test_data;/* --test-data SPEC */
    const char *resume;   /* --resume FILE   a checkpoint to continue from */
    const char *log;      /* --log FILE.csv  per-step loss and per-epoch metrics */
    int pad;              /* --pad N         zero pixels on each side of H and W; -1: not given */
    int normalize;        /* --normalize MEAN,STD given */
    float mean, std;      /* its values */
    long limit;           /* --limit N       only the first N samples (0: all) */
    long test_limit;      /* --test-limit N  likewise for the test set */
    long save_every;      /* --save-every N  also save a checkpoint every N steps (0: never) */
    long index;           /* --index N       predict sample N of an IDX file or data set; -1: not given */
    char **inputs;        /* predict's files (PGM or IDX): moved to the front of argv */
    int ninputs;
    int threads;          /* --threads N     kernel threads; 0: NNRT_THREADS, else one per core */
    int drop_last;        /* --drop-last     skip each epoch's last batch when it is smaller */
    int epochs_given;     /* --epochs was given (a text refuses it) */
    /* a model of tokens: train and eval on a text, and sample */
    long eval_every;      /* --eval-every N    the validation loss every N steps (default 250) */
    long eval_batches;    /* --eval-batches N  ... over N batches of windows (default 20) */
    const char *prompt;   /* --prompt TEXT     sample: the text to continue; NULL: not given */
    long tokens;          /* --tokens N        sample: how many to generate (default 500) */
    float temperature;    /* --temperature X   sample: 0 for the likeliest (default 0.8) */
    int top_k;            /* --top-k K         sample: among the K likeliest, 0 all (default 200) */
} nnrt_args;

/* Parses argv into a (which holds the defaults on entry); "--steps 10" and
 * "--steps=10" both work, and the string fields point into argv. On --help
 * (or -h) prints prog_doc, then the flags with the defaults from *a, and
 * exits 0; on a bad flag or value prints "<prog>: error: ..." to stderr and
 * exits 2. */
void nnrt_parse_args(nnrt_args *a, int argc, char **argv, const char *prog_doc);

/* ---- trainer.c: the trainer every generated program runs ---- */

double nnrt_seconds(void);                   /* monotonic clock */

/* A compiled model as the trainer sees it. The generated file fills one in
 * (static functions that forward to its NAME_* API) and calls
 * nnrt_train_main from its main(). Shapes are per sample. */
typedef struct nnrt_model {
    const char *name;               /* "lenet" */
    const char *source;             /* "models/lenet.nn" */
    const char *summary;            /* the summary table nnc printed */
    void *self;                     /* the model's state: a struct NAME */
    int in_ndim;
    int64_t in_shape[NNRT_MAX_DIMS];
    int out_ndim;
    int64_t out_shape[NNRT_MAX_DIMS];
    int target_ndim;                /* 0 when targets are class indices */
    int64_t target_shape[NNRT_MAX_DIMS];
    int classes;                    /* > 0: a target is a class index in [0, classes), stored as float
                                     * (one per position when target_ndim is 1: a sequence model) */
    int vocab;                      /* > 0: the input holds token ids in [0, vocab), stored as float */
    int causal;                     /* 1: output position t depends on input positions 0..t alone, so
                                     * sampling may leave the window's later positions at 0 */
    float lr;                       /* the model's learning rate */
    int ntensors;                   /* tensors of the state_dict: parameters, then buffers such as a
                                     * batch norm's running statistics; tensors(what 0) returns them all */
    int nstate;                     /* further tensors a checkpoint holds to resume training (optimizer
                                     * state, the step counter); not part of PyTorch's state_dict */
    void (*init)(void *self, int batch, uint64_t seed);
    void (*release)(void *self);
    void (*zero_grad)(void *self);
    float *(*forward)(void *self, const float *input, int n);   /* returns the output [n, out] */
    float (*loss)(void *self, const float *target);
    void (*backward)(void *self);
    void (*step)(void *self, float lr);
    /* backward, step and zero_grad in one call, the same bits (may be NULL) */
    void (*backward_step)(void *self, float lr);
    void (*set_training)(void *self, int training);             /* dropout, batch norm; may be NULL */
    /* fills t[] with views of the state_dict (what 0: ntensors of them), the
     * gradients of its parameters (what 1: at most ntensors, named "NAME.grad"),
     * or the checkpoint's further tensors (what 2: nstate); returns how many */
    int (*tensors)(void *self, nnrt_tensor *t, int what);
    /* the learning-rate schedule, applied by the trainer from the base lr per
     * epoch: NNRT_SCHED_NONE, _STEP (nnrt_lr_step) or _COSINE (nnrt_lr_cosine);
     * or per step: _WARMUP_COSINE (nnrt_lr_warmup_cosine) */
    int schedule;
    long sched_step_size;           /* step: every this many epochs ...; warmup_cosine: warmup steps */
    float sched_gamma;              /* ... multiply by gamma */
    long sched_t_max;               /* cosine: period in epochs ...; warmup_cosine: the step it ends at */
    float sched_eta_min;            /* ... and the lowest lr */
    int min_batch;                  /* the smallest batch that trains (2 with batchnorm1d on flat values) */
    /* NaN hunting: with the check on, forward tests every value it computes
     * and first_nonfinite names the first that held a NaN or an infinity
     * ("conv1 (line 12)"), or returns NULL */
    void (*set_nan_check)(void *self, int on);
    const char *(*first_nonfinite)(void *self);
} nnrt_model;
enum { NNRT_SCHED_NONE = 0, NNRT_SCHED_STEP = 1, NNRT_SCHED_COSINE = 2, NNRT_SCHED_WARMUP_COSINE = 3 };

/* Runs the trainer: parses argv, trains, saves. Returns the exit status. */
int nnrt_train_main(const nnrt_model *m, int argc, char **argv);

/* ---- data.c: data sets (IDX, CSV, safetensors, PGM) and their batches ----
 * A data set is read whole and checked before it is used; every error
 * message starts with the file's name. Bytes (IDX type 08, PGM with maxval
 * 255) stay bytes until a batch is made. */

typedef struct nnrt_dataset {
    char *path;                     /* the file of the samples, for messages */
    char *label_path;               /* the file of the labels, if another (IDX) */
    int64_t n;                      /* samples */
    int ndim;                       /* the shape of one sample: [28, 28] for MNIST */
    int64_t shape[NNRT_MAX_DIMS];
    size_t size;                    /* prod(shape) */
    unsigned char *u8;              /* [n, size] bytes, divided by 255 when batched; or NULL */
    float *f32;                     /* or [n, size] values, used as they are */
    int32_t *labels;                /* [n] class labels (>= 0), or NULL */
    int nclasses;                   /* 1 + the largest label */
    float *targets;                 /* [n, tsize] target values, or NULL */
    int tndim;                      /* the shape of one target */
    int64_t tshape[NNRT_MAX_DIMS];
    size_t tsize;
    nnrt_st_file *st;               /* a safetensors file that f32 and targets point into, or NULL */
} nnrt_dataset;

/* Images (an IDX file [N, ...], plain or gzip) and their labels (IDX [N];
 * labels may be NULL for images alone). */
int nnrt_data_idx(nnrt_dataset *d, const char *images, const char *labels, char *err, size_t errlen);
/* CSV, one sample a row: nfeatures numbers, then a label (class index) or
 * the targets. ntargets is 0 when the model takes class labels, else the
 * size of its target; with ntargets > 1 a row may hold a label instead
 * (one-hot encoded later). A first row that is not numbers is a header. */
int nnrt_data_csv(nnrt_dataset *d, const char *path, size_t nfeatures, size_t ntargets, char *err,
                  size_t errlen);
/* "input" [N, ...] and "target" [N, ...], or [N]: class labels, but for a
 * model whose target is one value (ntargets 1, as nnrt_data_csv's), whose
 * targets [N] are those values */
int nnrt_data_safetensors(nnrt_dataset *d, const char *path, size_t ntargets, char *err, size_t errlen);
/* A PGM image (P5 or P2): one sample [H, W], scaled to [0, 1] by its maxval. */
int nnrt_data_pgm(nnrt_dataset *d, const char *path, char *err, size_t errlen);
/* A data set named by a spec: mnist:DIR (the training files, or the test
 * files t10k-* if test), idx:IMAGES,LABELS, csv:FILE, or a file told by
 * its content (IDX images, PGM) or name (.csv, else safetensors). */
int nnrt_data_load(nnrt_dataset *d, const char *spec, int test, size_t nfeatures, size_t ntargets,
                   char *err, size_t errlen);
/* 1 if the spec names a test set too (mnist:DIR) */
int nnrt_data_spec_has_test(const char *spec);
void nnrt_data_free(nnrt_dataset *d);
/* The whole content of path (plain or gzip), malloc'd, with a NUL after it. */
int nnrt_data_read_file(const char *path, char **out, size_t *len, char *err, size_t errlen);

/* What happens to a sample on its way to the model (see data.c). */
typedef struct nnrt_transform {
    int pad;                        /* zero pixels on each side of H and W, before scaling */
    float mean, std;                /* then (x - mean) / std; 0 and 1 for none */
} nnrt_transform;

/* 0 if d's samples, transformed, fit a model input of this shape: equal
 * but for leading 1s ([28, 28] fits [1, 28, 28]), or of the same size when
 * either is flat. Else -1, and err names the file, both shapes and, if one
 * fits, the --pad that would. */
int nnrt_data_fit(const nnrt_dataset *d, const nnrt_transform *tf, int ndim, const int64_t *shape,
                  char *err, size_t errlen);

/* How targets are made: the label as a float (models with classes), a
 * one-hot vector of tsize, or the data's target values. */
enum { NNRT_TARGET_CLASS = 1, NNRT_TARGET_ONEHOT = 2, NNRT_TARGET_VALUES = 3 };
/* The mode for a model with these classes (0: none) and target size, after
 * checking every label is in range; -1 with a message naming the file. */
int nnrt_data_targets_mode(const nnrt_dataset *d, int classes, size_t tsize, char *err, size_t errlen);

/* perm[n] = a permutation of 0..n-1 drawn from r (Fisher-Yates) */
void nnrt_shuffle(int64_t *perm, int64_t n, nnrt_rng *r);
/* The n samples idx[0..n) as a batch: x[n, in] transformed; t[n, ...] the
 * targets by mode (t may be NULL); labels[n] (may be NULL; -1 without labels). */
void nnrt_data_batch(float *x, float *t, int32_t *labels, const nnrt_dataset *d, const int64_t *idx,
                     int n, const nnrt_transform *tf, int mode, size_t tsize);

/* ---- text.c: a text as a language model's data set; sampling ----
 * The bytes of a file, as token ids (a byte's rank in the sorted set of the
 * distinct bytes); the first 90% train, the last 10% validate (nanoGPT's
 * shakespeare_char, with bytes for characters). */

typedef struct nnrt_vocab {
    int n;                          /* tokens: 1 to 256 */
    unsigned char byte[256];        /* [n] the byte of each id, increasing */
    int16_t id[256];                /* the id of each byte, -1 if it has none */
} nnrt_vocab;

/* "10,32,97": the bytes as decimal numbers (a checkpoint's "vocab"); len >= 1024 holds any */
void nnrt_vocab_text(char *buf, size_t len, const nnrt_vocab *v);
/* reads what nnrt_vocab_text wrote (strictly increasing bytes); 0, or -1 */
int nnrt_vocab_parse(nnrt_vocab *v, const char *s);
/* "'a'", "'\n'", "byte 0xff": a byte for messages */
void nnrt_byte_text(char *buf, size_t len, unsigned char b);

enum { NNRT_TEXT_TRAIN = 0, NNRT_TEXT_VAL = 1 };
typedef struct nnrt_text {
    char *path;                     /* the file, for messages */
    unsigned char *ids;             /* [n] the file's bytes as ids */
    size_t n;                       /* bytes */
    size_t ntrain;                  /* the first ntrain train, the rest validate */
    nnrt_vocab vocab;
} nnrt_text;

/* Reads the text of path. The vocabulary is given's (a checkpoint's,
 * named vocab_from in messages: every byte of the file must be in it), or
 * with given NULL the file's own. Refuses a vocabulary of more than
 * max_vocab bytes, an empty file, and one whose splits are shorter than a
 * window (window + 1 bytes: the input and the target shifted by one). */
int nnrt_text_load(nnrt_text *t, const char *path, const nnrt_vocab *given, const char *vocab_from,
                   int max_vocab, int64_t window, char *err, size_t errlen);
void nnrt_text_free(nnrt_text *t);
/* n windows of the split (NNRT_TEXT_TRAIN or _VAL) at starts drawn from r:
 * x[n, window] the ids (as floats), y[n, window] the next ids */
void nnrt_text_batch(float *x, float *y, const nnrt_text *t, int split, int n, int64_t window, nnrt_rng *r);

/* The next token from logits[n] (changed): ids from valid on are never
 * drawn; temperature 0 takes the largest, else logits / temperature, cut to
 * the top_k largest (0: no cut), softmax, and a draw from r. scratch holds
 * n floats. */
int nnrt_sample_next(float *logits, int n, int valid, float temperature, int top_k, float *scratch,
                     nnrt_rng *r);

#endif /* NNRT_HOST_H */
