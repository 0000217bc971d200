/*
 * timbre plugin ABI, version 1.1 (1.1 added descriptor plugins: `start` and `finish`).
 *
 * A plugin is a shared library exporting one symbol, `timbre_plugin_entry`,
 * that returns a pointer to a static descriptor. The host checks the ABI
 * version and the descriptor's size before calling anything else.
 *
 * Rules of the boundary:
 *  - only pointers, lengths, fixed-width integers, floats and NUL-terminated
 *    UTF-8 strings cross it; metadata and configuration are JSON strings;
 *  - audio and features are float32 tensors, row-major, at most 4 axes;
 *  - every call returns a status; on failure `last_error` explains it;
 *  - one instance is never called from two threads at once; different
 *    instances may run on different threads concurrently;
 *  - memory is freed by whoever allocated it (`free_output` for outputs);
 *  - the host never unloads a plugin library while it runs.
 *
 * Compatibility: the host accepts a plugin whose abi_major equals its own and
 * whose abi_minor is at most its own. New fields are only ever appended to
 * the descriptor in a minor version, so `struct_size` tells the host which
 * fields a plugin has.
 */
#ifndef TIMBRE_PLUGIN_H
#define TIMBRE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIMBRE_ABI_MAJOR 1
#define TIMBRE_ABI_MINOR 1
#define TIMBRE_ENTRY_SYMBOL "timbre_plugin_entry"

/* Plugin kinds. */
#define TIMBRE_KIND_FEATURE 1    /* PCM segments in, one feature matrix per segment out */
#define TIMBRE_KIND_CLASSIFIER 2 /* feature matrices in, class probabilities and an embedding out */
#define TIMBRE_KIND_DESCRIPTOR 3 /* since 1.1: a whole track's PCM in, in chunks; named track-level values out */

/* Status codes returned by create and process. */
#define TIMBRE_OK 0
#define TIMBRE_ERR_INVALID_INPUT 1 /* the input tensor has the wrong shape or values */
#define TIMBRE_ERR_CONFIG 2        /* the configuration JSON is malformed or out of range */
#define TIMBRE_ERR_PROCESS 3       /* the plugin failed while processing */
#define TIMBRE_ERR_PANIC 4         /* the plugin caught a panic or exception */

#define TIMBRE_MAX_DIMS 4

/* A float32 tensor, row-major. `len` is the product of the first `ndim` entries of `shape`. */
typedef struct timbre_tensor {
    const float *data;
    size_t len;
    uint32_t ndim;
    size_t shape[TIMBRE_MAX_DIMS];
} timbre_tensor;

/*
 * What `process` returns. Feature plugins fill `values` with
 * [segments, n_features, frames] and leave `embedding` empty (ndim 0).
 * Classifier plugins fill `values` with probabilities [segments, classes]
 * and `embedding` with [segments, dim].
 * Descriptor plugins return empty outputs (ndim 1, shape [0]) from `process`;
 * `finish` fills `values` with [n_values], named in order by the instance
 * info's "values" array, and may fill `embedding` with state the host keeps
 * beside the track (e.g. what an album's loudness is computed from later).
 * The memory belongs to the plugin until the host passes the output to `free_output`.
 */
typedef struct timbre_output {
    timbre_tensor values;
    timbre_tensor embedding;
    void *owner; /* plugin-private */
} timbre_output;

typedef struct timbre_plugin_descriptor {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(timbre_plugin_descriptor) as the plugin was built */
    uint32_t kind;        /* TIMBRE_KIND_* */
    const char *name;     /* static, e.g. "mel"; unique among loaded plugins */
    const char *version;  /* static, semver of the plugin itself */
    const char *metadata_json; /* static JSON object: description, config keys and their defaults */

    /* Build an instance from a JSON object (may be "{}" for defaults). */
    int32_t (*create)(const char *config_json, void **instance_out);
    /* JSON describing the instance: its resolved config, the sample rate or
     * feature shape it expects, labels. Valid until destroy. */
    const char *(*instance_info)(void *instance);
    /* Process a batch: input [segments, samples] for feature plugins,
     * [segments, n_features, frames] for classifiers. */
    int32_t (*process)(void *instance, const timbre_tensor *input, timbre_output *output);
    void (*free_output)(void *instance, timbre_output *output);
    /* Message of the last failed call made on the calling thread; never NULL. */
    const char *(*last_error)(void);
    void (*destroy)(void *instance);

    /* ABI 1.1. Descriptor plugins must set both; other kinds may leave them NULL.
     *
     * A descriptor plugin sees one track at a time, as a stream, so a long
     * track is never held whole: `start` announces a track and how it was
     * decoded, then `process` gets consecutive chunks [frames, channels],
     * interleaved, at that rate (any number of calls, any chunk length), then
     * `finish` returns the track's values and readies the instance for the
     * next `start`. The instance info says what the plugin wants:
     * "input": {"channels": "decoded"} (the channels and rate as decoded, for
     * loudness) or {"channels": "mono", "sample_rate": N} (a mono mix at N Hz). */
    int32_t (*start)(void *instance, uint32_t sample_rate, uint32_t channels);
    int32_t (*finish)(void *instance, timbre_output *output);
} timbre_plugin_descriptor;

typedef const timbre_plugin_descriptor *(*timbre_plugin_entry_fn)(void);

/* The one symbol a plugin exports. */
const timbre_plugin_descriptor *timbre_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* TIMBRE_PLUGIN_H */
