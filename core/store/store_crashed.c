/*
 * store_crashed.c - a run's crash record joined to its facts (crashed.h).
 */
#include "store/crashed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/crash.h"

#define CRASH_TEXT_MAX 65536

char *store_crash_text(const char *store_dir, uint64_t run_id)
{
    char path[4200];
    crash_record_path(store_dir, (unsigned long long)run_id, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *t = malloc(CRASH_TEXT_MAX);
    size_t n = t ? fread(t, 1, CRASH_TEXT_MAX - 1, f) : 0;
    fclose(f);
    if (t)
        t[n] = '\0';
    return t;
}

int store_crash_annotate(const char *store_dir, json_t *run, int with_text)
{
    const char *status = json_string_value(json_object_get(run, "status"));
    json_t *id = json_object_get(run, "id");
    /* "running" too: a read-only reader sees a crashed run as the dying
     * process left it, before a writer marks it incomplete. */
    if (!status || (strcmp(status, "incomplete") != 0 && strcmp(status, "running") != 0) ||
        !json_is_integer(id))
        return 0;
    char *text = store_crash_text(store_dir, (uint64_t)json_integer_value(id));
    if (!text)
        return 0;
    json_object_set_new(run, "status", json_string("crashed"));
    if (with_text)
        json_object_set_new(run, "crash", json_string(text));
    free(text);
    return 1;
}
