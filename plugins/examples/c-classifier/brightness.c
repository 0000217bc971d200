/*
 * A minimal classifier plugin in C: is a segment "dark" or "bright"?
 *
 * Input: mel features [segments, n_mels, frames] in dB, as the `mel` feature plugin makes
 * them (the model folder's [features] section asks for them). For each segment it compares
 * the mean level of the upper half of the bands with the lower half's:
 *
 *     p(bright) = 1 / (1 + exp(-(scale * (upper - lower) + bias)))
 *
 * `scale` and `bias` are this model's "weights": they are read from `weights.txt` in the
 * model folder, whose path the host passes in the configuration as {"model_dir": "..."}.
 * Output: probabilities [segments, 2] (labels "dark", "bright", as model.toml lists them)
 * and an embedding [segments, 2]: the two band means.
 *
 * Build (from the repository root):
 *   cc -std=c11 -O2 -shared -fPIC -I plugins/sdk/include \
 *      plugins/examples/c-classifier/brightness.c -o libtimbre_plugin_brightness.so -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timbre_plugin.h"

typedef struct {
    float scale, bias;
    char info[160];
} brightness;

/* The last error of the calling thread: the ABI asks for a thread-local message. */
static _Thread_local char last_error_message[8448];

static int32_t fail(int32_t status, const char *message, const char *detail) {
    snprintf(last_error_message, sizeof last_error_message, "brightness: %s%s", message, detail ? detail : "");
    return status;
}

/* The string value of "model_dir" in the host's JSON configuration, unescaped into `out`.
 * A real plugin would use a JSON parser; this one understands what the host sends. */
static int read_model_dir(const char *json, char *out, size_t size) {
    const char *key = json ? strstr(json, "\"model_dir\"") : NULL;
    const char *p = key ? strchr(key + 11, '"') : NULL;
    if (!p) return 0;
    size_t n = 0;
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\' && *p != '/') return 0; /* \n, \uXXXX: not in a sane path */
        }
        if (n + 1 >= size) return 0;
        out[n++] = *p;
    }
    out[n] = '\0';
    return *p == '"';
}

static int32_t brightness_create(const char *config_json, void **instance_out) {
    char dir[4096], path[4200];
    if (!read_model_dir(config_json, dir, sizeof dir))
        return fail(TIMBRE_ERR_CONFIG, "the configuration has no usable \"model_dir\": ", config_json);
    snprintf(path, sizeof path, "%s/weights.txt", dir);
    FILE *file = fopen(path, "r");
    if (!file) return fail(TIMBRE_ERR_CONFIG, "cannot open ", path);
    float scale, bias;
    int read = fscanf(file, "%f %f", &scale, &bias);
    fclose(file);
    if (read != 2 || !isfinite(scale) || !isfinite(bias))
        return fail(TIMBRE_ERR_CONFIG, "expected two numbers (scale bias) in ", path);
    brightness *self = calloc(1, sizeof *self);
    if (!self) return fail(TIMBRE_ERR_PROCESS, "out of memory", NULL);
    self->scale = scale;
    self->bias = bias;
    snprintf(self->info, sizeof self->info, "{\"labels\":[\"dark\",\"bright\"],\"scale\":%g,\"bias\":%g}",
             (double)scale, (double)bias);
    *instance_out = self;
    return TIMBRE_OK;
}

/* Owned by the instance, valid until destroy: the ABI allows exactly that. */
static const char *brightness_info(void *instance) { return ((brightness *)instance)->info; }

static int32_t brightness_process(void *instance, const timbre_tensor *input, timbre_output *output) {
    const brightness *self = instance;
    if (input->ndim != 3 || input->shape[1] < 2 || input->shape[2] < 1)
        return fail(TIMBRE_ERR_INVALID_INPUT, "expected [segments, n_mels >= 2, frames >= 1]", NULL);
    size_t segments = input->shape[0], bands = input->shape[1], frames = input->shape[2];
    /* One allocation for both outputs; `owner` remembers it for free_output. */
    float *buffer = malloc((segments > 0 ? segments : 1) * 4 * sizeof(float));
    if (!buffer) return fail(TIMBRE_ERR_PROCESS, "out of memory", NULL);
    float *probabilities = buffer, *embedding = buffer + 2 * segments;
    for (size_t s = 0; s < segments; s++) {
        const float *x = input->data + s * bands * frames;
        double lower = 0.0, upper = 0.0;
        for (size_t b = 0; b < bands; b++) {
            double sum = 0.0;
            for (size_t f = 0; f < frames; f++) sum += x[b * frames + f];
            if (b < bands / 2) lower += sum; else upper += sum;
        }
        lower /= (double)(bands / 2 * frames);
        upper /= (double)((bands - bands / 2) * frames);
        double bright = 1.0 / (1.0 + exp(-(self->scale * (upper - lower) + self->bias)));
        probabilities[2 * s] = (float)(1.0 - bright);
        probabilities[2 * s + 1] = (float)bright;
        embedding[2 * s] = (float)lower;
        embedding[2 * s + 1] = (float)upper;
    }
    memset(output, 0, sizeof *output);
    output->values = (timbre_tensor){.data = probabilities, .len = 2 * segments, .ndim = 2, .shape = {segments, 2}};
    output->embedding = (timbre_tensor){.data = embedding, .len = 2 * segments, .ndim = 2, .shape = {segments, 2}};
    output->owner = buffer;
    return TIMBRE_OK;
}

static void brightness_free_output(void *instance, timbre_output *output) {
    (void)instance;
    free(output->owner);
    memset(output, 0, sizeof *output);
}

static const char *brightness_last_error(void) { return last_error_message; }

static void brightness_destroy(void *instance) { free(instance); }

static const timbre_plugin_descriptor descriptor = {
    .abi_major = TIMBRE_ABI_MAJOR,
    .abi_minor = TIMBRE_ABI_MINOR,
    .struct_size = sizeof(timbre_plugin_descriptor),
    .kind = TIMBRE_KIND_CLASSIFIER,
    .name = "brightness",
    .version = "0.1.0",
    .metadata_json = "{\"description\":\"dark or bright, from the upper and lower mel bands; an example in C\","
                     "\"config\":{\"model_dir\":\"the model folder, holding weights.txt (scale bias)\"}}",
    .create = brightness_create,
    .instance_info = brightness_info,
    .process = brightness_process,
    .free_output = brightness_free_output,
    .last_error = brightness_last_error,
    .destroy = brightness_destroy,
    /* start and finish: descriptor plugins only; left NULL. */
};

const timbre_plugin_descriptor *timbre_plugin_entry(void) { return &descriptor; }
