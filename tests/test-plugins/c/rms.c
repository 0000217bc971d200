/*
 * A feature plugin written in plain C against timbre_plugin.h: frame-wise RMS level.
 * Input [segments, samples]; output [segments, 1, frames] with `frame` samples per frame.
 * The end-to-end tests compile it with `cc -shared` and load it like any plugin.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timbre_plugin.h"

typedef struct {
    size_t frame;
    char info[128];
} rms_instance;

static _Thread_local char last_error_message[256];

static int32_t fail(int32_t status, const char *message) {
    snprintf(last_error_message, sizeof last_error_message, "%s", message);
    return status;
}

static int32_t rms_create(const char *config_json, void **instance_out) {
    size_t frame = 512;
    /* A real plugin would parse JSON; this one understands {"frame": N} and nothing else. */
    const char *key = config_json ? strstr(config_json, "\"frame\"") : NULL;
    if (key) {
        const char *colon = strchr(key, ':');
        long value = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (value <= 0) return fail(TIMBRE_ERR_CONFIG, "rms: \"frame\" must be a positive integer");
        frame = (size_t)value;
    }
    rms_instance *instance = calloc(1, sizeof *instance);
    if (!instance) return fail(TIMBRE_ERR_PROCESS, "rms: out of memory");
    instance->frame = frame;
    snprintf(instance->info, sizeof instance->info, "{\"sample_rate\":22050,\"frame\":%zu}", frame);
    *instance_out = instance;
    return TIMBRE_OK;
}

static const char *rms_info(void *instance) { return ((rms_instance *)instance)->info; }

static int32_t rms_process(void *instance, const timbre_tensor *input, timbre_output *output) {
    const rms_instance *self = instance;
    if (input->ndim != 2) return fail(TIMBRE_ERR_INVALID_INPUT, "rms: expected [segments, samples]");
    size_t segments = input->shape[0], samples = input->shape[1];
    size_t frames = samples / self->frame;
    float *values = malloc((segments * frames > 0 ? segments * frames : 1) * sizeof(float));
    if (!values) return fail(TIMBRE_ERR_PROCESS, "rms: out of memory");
    for (size_t s = 0; s < segments; s++) {
        for (size_t f = 0; f < frames; f++) {
            double sum = 0.0;
            const float *x = input->data + s * samples + f * self->frame;
            for (size_t i = 0; i < self->frame; i++) sum += (double)x[i] * x[i];
            values[s * frames + f] = (float)sqrt(sum / (double)self->frame);
        }
    }
    memset(output, 0, sizeof *output);
    output->values.data = values;
    output->values.len = segments * frames;
    output->values.ndim = 3;
    output->values.shape[0] = segments;
    output->values.shape[1] = 1;
    output->values.shape[2] = frames;
    output->owner = values;
    return TIMBRE_OK;
}

static void rms_free_output(void *instance, timbre_output *output) {
    (void)instance;
    free(output->owner);
    memset(output, 0, sizeof *output);
}

static const char *rms_last_error(void) { return last_error_message; }

static void rms_destroy(void *instance) { free(instance); }

#ifndef RMS_ABI_MAJOR
#define RMS_ABI_MAJOR TIMBRE_ABI_MAJOR
#endif
/* RMS_ABI_1_0: describe itself as a plugin built against ABI 1.0, whose descriptor ends at
 * `destroy`: the host must still load it, reading nothing beyond `struct_size`. */
#ifdef RMS_ABI_1_0
#define RMS_ABI_MINOR 0
#define RMS_STRUCT_SIZE offsetof(timbre_plugin_descriptor, start)
#else
#define RMS_ABI_MINOR TIMBRE_ABI_MINOR
#define RMS_STRUCT_SIZE sizeof(timbre_plugin_descriptor)
#endif
#ifndef RMS_KIND
#define RMS_KIND TIMBRE_KIND_FEATURE
#endif

static const timbre_plugin_descriptor descriptor = {
    .abi_major = RMS_ABI_MAJOR,
    .abi_minor = RMS_ABI_MINOR,
    .struct_size = RMS_STRUCT_SIZE,
    .kind = RMS_KIND,
    .name = "rms",
    .version = "1.0.0",
    .metadata_json = "{\"description\":\"frame RMS level, written in C\"}",
    .create = rms_create,
    .instance_info = rms_info,
    .process = rms_process,
    .free_output = rms_free_output,
    .last_error = rms_last_error,
    .destroy = rms_destroy,
};

const timbre_plugin_descriptor *timbre_plugin_entry(void) { return &descriptor; }
