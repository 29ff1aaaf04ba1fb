/*
 * model_repo.h - a Triton-layout model repository on disk, read without side effects:
 *
 *     DIR/NAME/config.pbtxt        optional (triton_config.h's subset), or
 *     DIR/NAME/config.yaml         optional, capstan's model YAML (model_config.c)
 *     DIR/NAME/VERSION/model.onnx  VERSION a positive integer without leading zeros
 *
 * A scan says which models the folder holds and which of their versions the version policy
 * selects; loading is the repository's (repository.c). Nothing is ever written under DIR.
 * Cost: one readdir of DIR, and per model one of NAME plus a stat per version.
 */
#ifndef CS_API_MODEL_REPO_H
#define CS_API_MODEL_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "api/triton_config.h"
#include "runtime/runtime.h"

#define CS_MODEL_REPO_MAX_MODELS   1024
#define CS_MODEL_REPO_MAX_VERSIONS 64
#define CS_MODEL_REPO_PATH_MAX     4096

typedef struct cs_model_repo_model {
    char name[CS_TRITON_NAME_MAX];
    bool has_pbtxt, has_yaml;
    cs_triton_config tc;   /* config.pbtxt's, or the defaults */
    cs_model_config cfg;   /* config.yaml's keys over the runtime's defaults */
    bool yaml_batch_given; /* config.yaml names max_batch_size */
    int64_t versions[CS_MODEL_REPO_MAX_VERSIONS]; /* selected by the policy, ascending */
    int n_versions;
    int64_t found[CS_MODEL_REPO_MAX_VERSIONS]; /* every version folder with a model.onnx */
    int n_found;
    char warnings[512]; /* config.pbtxt fields skipped, comma-separated; "" if none */
} cs_model_repo_model;

/* Whether name may name a model: 1..127 bytes of letters, digits, '_', '-' and '.', not
 * starting with '.'. */
bool cs_model_repo_name_ok(const char *name);

/* The model names under dir (subfolders with a valid name), sorted, into names (max entries of
 * CS_TRITON_NAME_MAX bytes); *n is how many. CS_ERR_NOT_FOUND when dir cannot be read. */
cs_status cs_model_repo_list(const char *dir, char (*names)[CS_TRITON_NAME_MAX], int max, int *n,
                             cs_error *err);

/* Reads dir/name: its configuration and versions. CS_ERR_INVALID (naming the file) for a bad
 * config.pbtxt or config.yaml, both present, or a config naming another model; out's
 * versions are filled even then. */
cs_status cs_model_repo_read(const char *dir, const char *name, cs_model_repo_model *out,
                             cs_error *err);

/* Fills m->versions from m->found by m->tc's version policy (after tc changed). */
void cs_model_repo_select(cs_model_repo_model *m);

/* dir/name/version/model.onnx into path (CS_MODEL_REPO_PATH_MAX bytes). */
void cs_model_repo_path(const char *dir, const char *name, int64_t version, char *path);

#endif
