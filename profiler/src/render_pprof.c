/*
 * render_pprof.c - a profile as pprof's protocol buffer (profile.proto,
 * compiled with Debian's protobuf-c at build time). Frames become
 * functions with names already resolved (has_functions), one mapping per
 * module, one location per frame; tags become string labels; values are
 * samples/count and cpu/nanoseconds (weight x period). The output is not
 * gzip-compressed: pprof accepts raw protobuf as well.
 *
 * Place in the whole: a renderer (public function only, declared in
 * obs_profiler.h). It reads a finished profile and nothing else; it may
 * include: profile, util (and the generated profile.pb-c.h).
 */
#include <stdlib.h>
#include <string.h>

#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "profile.pb-c.h"
#include "util.h"

typedef Perftools__Profiles__Profile PProfile;
typedef Perftools__Profiles__ValueType PValueType;
typedef Perftools__Profiles__Sample PSample;
typedef Perftools__Profiles__Label PLabel;
typedef Perftools__Profiles__Mapping PMapping;
typedef Perftools__Profiles__Location PLocation;
typedef Perftools__Profiles__Line PLine;
typedef Perftools__Profiles__Function PFunction;

typedef struct strtab {
    prof_blobs b;
    int failed;
} strtab;

static int64_t str(strtab *t, const char *s)
{
    uint32_t id = 0;
    if (prof_blobs_intern(&t->b, s, (uint32_t)strlen(s) + 1, &id) != 0)
        t->failed = 1;
    return id;
}

int obs_prof_render_pprof(const obs_prof_profile *p, uint8_t **out, size_t *len)
{
    strtab st = {{0}, 0};
    PProfile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
    PValueType vt[2] = {PERFTOOLS__PROFILES__VALUE_TYPE__INIT, PERFTOOLS__PROFILES__VALUE_TYPE__INIT};
    PValueType period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    PValueType *vtp[2] = {&vt[0], &vt[1]};
    uint32_t nf = p->frames.n, ne = p->entries.n, nm = 0;
    PFunction *fn = calloc(nf ? nf : 1, sizeof *fn);
    PFunction **fnp = calloc(nf ? nf : 1, sizeof *fnp);
    PLocation *loc = calloc(nf ? nf : 1, sizeof *loc);
    PLocation **locp = calloc(nf ? nf : 1, sizeof *locp);
    PLine *line = calloc(nf ? nf : 1, sizeof *line);
    PLine **linep = calloc(nf ? nf : 1, sizeof *linep);
    PMapping *map = calloc(nf ? nf : 1, sizeof *map);
    PMapping **mapp = calloc(nf ? nf : 1, sizeof *mapp);
    uint32_t *mod_of_str = calloc(p->strs.n ? p->strs.n : 1, sizeof *mod_of_str);
    PSample *smp = calloc(ne ? ne : 1, sizeof *smp);
    PSample **smpp = calloc(ne ? ne : 1, sizeof *smpp);
    uint64_t *locids = NULL;
    int64_t *values = calloc((size_t)(ne ? ne : 1) * 2, sizeof *values);
    PLabel *labels = calloc((size_t)(ne ? ne : 1) * OBS_PROF_MAX_LABELS, sizeof *labels);
    PLabel **labelp = calloc((size_t)(ne ? ne : 1) * OBS_PROF_MAX_LABELS, sizeof *labelp);
    char **strings = NULL;
    uint8_t *buf = NULL;
    int rc = OBS_ENOMEM;
    size_t total_depth = 0;
    if (!fn || !fnp || !loc || !locp || !line || !linep || !map || !mapp || !mod_of_str || !smp ||
        !smpp || !values || !labels || !labelp)
        goto out;

    str(&st, "");
    vt[0].type = str(&st, "samples");
    vt[0].unit = str(&st, "count");
    vt[1].type = str(&st, "cpu");
    vt[1].unit = str(&st, "nanoseconds");
    period.type = vt[1].type;
    period.unit = vt[1].unit;
    uint32_t hz = p->info.hz ? p->info.hz : 99;
    int64_t period_ns = 1000000000LL / hz;

    for (uint32_t f = 0; f < nf; f++) {
        const prof_frame *fr = prof_profile_frame_get(p, f);
        if (!mod_of_str[fr->module]) {
            PMapping *m = &map[nm];
            perftools__profiles__mapping__init(m);
            m->id = nm + 1;
            m->filename = str(&st, prof_profile_strget(p, fr->module));
            m->has_functions = 1;
            mapp[nm++] = m;
            mod_of_str[fr->module] = nm;
        }
        perftools__profiles__function__init(&fn[f]);
        fn[f].id = f + 1;
        fn[f].name = str(&st, prof_profile_strget(p, fr->name));
        fn[f].system_name = str(&st, prof_profile_strget(p, fr->system));
        fnp[f] = &fn[f];
        perftools__profiles__line__init(&line[f]);
        line[f].function_id = f + 1;
        linep[f] = &line[f];
        perftools__profiles__location__init(&loc[f]);
        loc[f].id = f + 1;
        loc[f].mapping_id = mod_of_str[fr->module];
        loc[f].n_line = 1;
        loc[f].line = &linep[f];
        locp[f] = &loc[f];
    }
    for (uint32_t e = 0; e < ne; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        uint32_t depth;
        prof_profile_stack_get(p, en->stack, &depth);
        total_depth += depth;
    }
    if (!(locids = calloc(total_depth ? total_depth : 1, sizeof *locids)))
        goto out;
    size_t lo = 0;
    for (uint32_t e = 0; e < ne; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(p, en->stack, &depth);
        PSample *s = &smp[e];
        perftools__profiles__sample__init(s);
        s->location_id = locids + lo;
        s->n_location_id = depth;
        for (uint32_t k = 0; k < depth; k++)
            locids[lo++] = (uint64_t)f[depth - 1 - k] + 1; /* leaf first */
        s->value = values + 2 * (size_t)e;
        s->n_value = 2;
        s->value[0] = (int64_t)p->weight[e];
        s->value[1] = (int64_t)p->weight[e] * period_ns;
        const prof_tagkey *k = prof_blobs_get(&p->tags, en->tag, NULL);
        s->label = labelp + (size_t)e * OBS_PROF_MAX_LABELS;
        s->n_label = k->n;
        for (uint32_t j = 0; j < k->n; j++) {
            PLabel *l = &labels[(size_t)e * OBS_PROF_MAX_LABELS + j];
            perftools__profiles__label__init(l);
            l->key = str(&st, prof_profile_strget(p, k->kv[2 * j]));
            l->str = str(&st, prof_profile_strget(p, k->kv[2 * j + 1]));
            s->label[j] = l;
        }
        smpp[e] = s;
    }
    if (st.failed || !(strings = calloc(st.b.n ? st.b.n : 1, sizeof *strings)))
        goto out;
    for (uint32_t i = 0; i < st.b.n; i++)
        strings[i] = (char *)prof_blobs_get(&st.b, i, NULL);

    prof.n_sample_type = 2;
    prof.sample_type = vtp;
    prof.n_sample = ne;
    prof.sample = smpp;
    prof.n_mapping = nm;
    prof.mapping = mapp;
    prof.n_location = nf;
    prof.location = locp;
    prof.n_function = nf;
    prof.function = fnp;
    prof.n_string_table = st.b.n;
    prof.string_table = strings;
    prof.time_nanos = (int64_t)p->info.start_ns;
    prof.duration_nanos =
        p->info.end_ns > p->info.start_ns ? (int64_t)(p->info.end_ns - p->info.start_ns) : 0;
    prof.period_type = &period;
    prof.period = period_ns;

    size_t n = perftools__profiles__profile__get_packed_size(&prof);
    if (!(buf = malloc(n ? n : 1)))
        goto out;
    perftools__profiles__profile__pack(&prof, buf);
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(fn);
    free(fnp);
    free(loc);
    free(locp);
    free(line);
    free(linep);
    free(map);
    free(mapp);
    free(mod_of_str);
    free(smp);
    free(smpp);
    free(locids);
    free(values);
    free(labels);
    free(labelp);
    free(strings);
    free(buf);
    prof_blobs_free(&st.b);
    return rc;
}
