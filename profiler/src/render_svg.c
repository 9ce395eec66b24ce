/*
 * render_svg.c - flame graphs as self-contained interactive SVG, in the
 * manner of flamegraph.pl: the root at the bottom, each frame as wide as
 * its share of the samples, children sorted by name (so two graphs of the
 * same code line up). Embedded JavaScript: hover shows a frame's figures in
 * the status line, click zooms into a frame (its ancestors stay as full-
 * width bars; click one of them or "Reset Zoom" to go back), "Search"
 * highlights frames matching a regular expression and prints the share of
 * samples they cover. Frames narrower than 0.1 px are left out, which
 * bounds the size of the file.
 *
 * The differential graph draws the newer profile and colours every frame
 * by the change of its inclusive share from the older one: red grew, blue
 * shrank, white unchanged; saturation is relative to the largest change.
 *
 * Place in the whole: a renderer (public functions only, declared in
 * obs_profiler.h). It reads a finished profile through the call tree and
 * nothing else; it may include: tree, profile, util.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "tree.h"
#include "util.h"

#define SVG_WIDTH 1200.0
#define SVG_PAD 10.0
#define FRAME_H 16
#define MIN_PX 0.1

typedef struct svg_ctx {
    prof_buf *b;
    const prof_tree *t;
    const obs_prof_profile *names;
    double scale; /* px per unit of weight */
    double ybase; /* y of the root frame */
    int diff;
    double total_after, total_before, max_delta;
} svg_ctx;

static const char *node_name(const svg_ctx *c, uint32_t n)
{
    return prof_profile_strget(c->names, c->t->nodes[n].name);
}

static __thread const svg_ctx *cmp_ctx;
static int child_cmp(const void *a, const void *b)
{
    return strcmp(node_name(cmp_ctx, *(const uint32_t *)a), node_name(cmp_ctx, *(const uint32_t *)b));
}

static void colour(const svg_ctx *c, uint32_t n, char *buf, size_t len)
{
    const char *name = node_name(c, n);
    if (c->diff) {
        const prof_node *nd = &c->t->nodes[n];
        double a = c->total_after > 0 ? (double)nd->total / c->total_after : 0;
        double b = c->total_before > 0 ? (double)nd->other / c->total_before : 0;
        double d = a - b, i = c->max_delta > 0 ? fabs(d) / c->max_delta : 0;
        int v = (int)lround(255 * (1 - i));
        if (d > 0)
            snprintf(buf, len, "rgb(255,%d,%d)", v, v);
        else
            snprintf(buf, len, "rgb(%d,%d,255)", v, v);
        return;
    }
    uint64_t h = prof_hash(name, strlen(name));
    double h1 = (double)(h & 0xff) / 255, h2 = (double)((h >> 8) & 0xff) / 255,
           h3 = (double)((h >> 16) & 0xff) / 255;
    if (name[0] == '[')
        snprintf(buf, len, "rgb(%d,%d,%d)", 160 + (int)(40 * h1), 160 + (int)(40 * h1),
                 170 + (int)(40 * h1));
    else if (strchr(name, ':') && !strstr(name, "::"))
        /* module:function - code of a registered module (a plugin). */
        snprintf(buf, len, "rgb(%d,%d,%d)", 50 + (int)(60 * h1), 165 + (int)(55 * h2),
                 165 + (int)(55 * h3));
    else
        snprintf(buf, len, "rgb(%d,%d,%d)", 205 + (int)(50 * h3), (int)(230 * h1), (int)(55 * h2));
}

static void emit(svg_ctx *c, uint32_t n, double x)
{
    const prof_node *nd = &c->t->nodes[n];
    double w = (double)nd->total * c->scale;
    if (w < MIN_PX)
        return;
    double y = c->ybase - nd->depth * FRAME_H;
    char fill[48];
    colour(c, n, fill, sizeof fill);
    const char *name = node_name(c, n);
    prof_buf_puts(c->b, "<g class=\"f\"><title>");
    prof_buf_xml(c->b, name);
    double pct = c->total_after > 0 ? 100.0 * (double)nd->total / c->total_after : 0;
    if (c->diff) {
        double pb = c->total_before > 0 ? 100.0 * (double)nd->other / c->total_before : 0;
        prof_buf_printf(c->b, " (after %llu samples, %.2f%%; before %llu, %.2f%%; change %+.2f pp)",
                        (unsigned long long)nd->total, pct, (unsigned long long)nd->other, pb,
                        pct - pb);
    } else {
        prof_buf_printf(c->b, " (%llu samples, %.2f%%)", (unsigned long long)nd->total, pct);
    }
    prof_buf_printf(c->b,
                    "</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
                    "rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%.1f\"></text></g>\n",
                    x, y, w, FRAME_H - 1, fill, x + 3, y + 11.5);
    if (nd->n_children == 0)
        return;
    uint32_t *kids = malloc(nd->n_children * sizeof *kids);
    if (!kids) {
        c->b->failed = 1;
        return;
    }
    uint32_t k = 0;
    for (uint32_t ch = nd->first_child; ch != UINT32_MAX; ch = c->t->nodes[ch].next_sibling)
        kids[k++] = ch;
    cmp_ctx = c;
    qsort(kids, k, sizeof *kids, child_cmp);
    double cx = x;
    for (uint32_t i = 0; i < k; i++) {
        emit(c, kids[i], cx);
        cx += (double)c->t->nodes[kids[i]].total * c->scale;
    }
    free(kids);
}

/* The script: frames keep their original geometry in data attributes;
 * zooming rescales x/width and hides what falls outside. */
static const char SCRIPT[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "'use strict';\n"
    "var W, PAD, details, matchedtxt, frames, zoomed = null, searching = null;\n"
    "function init(evt) {\n"
    "  var svg = document.documentElement;\n"
    "  W = parseFloat(svg.getAttribute('data-w')); PAD = parseFloat(svg.getAttribute('data-pad'));\n"
    "  details = document.getElementById('details').firstChild;\n"
    "  matchedtxt = document.getElementById('matched');\n"
    "  frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
    "  frames.forEach(function (g) {\n"
    "    var r = g.querySelector('rect');\n"
    "    g.ox = parseFloat(r.getAttribute('x')); g.ow = parseFloat(r.getAttribute('width'));\n"
    "    g.oy = parseFloat(r.getAttribute('y')); g.ofill = r.getAttribute('fill');\n"
    "    g.name = g.querySelector('title').textContent;\n"
    "    g.fname = g.name.replace(/ \\((after )?[0-9]+ samples.*$/, '');\n"
    "    g.addEventListener('mouseover', function () { details.nodeValue = g.name; });\n"
    "    g.addEventListener('mouseout', function () { details.nodeValue = ' '; });\n"
    "    g.addEventListener('click', function () { zoom(g); });\n"
    "    place(g, g.ox, g.ow);\n"
    "  });\n"
    "  document.getElementById('unzoom').addEventListener('click', unzoom);\n"
    "  document.getElementById('search').addEventListener('click', search);\n"
    "}\n"
    "function place(g, x, w) {\n"
    "  var r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "  r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', Math.max(w, 0).toFixed(2));\n"
    "  t.setAttribute('x', (x + 3).toFixed(2));\n"
    "  var n = Math.floor((w - 6) / 7);\n"
    "  t.textContent = n < 3 ? '' : (g.fname.length <= n ? g.fname : g.fname.substr(0, n - 2) + '..');\n"
    "}\n"
    "function zoom(node) {\n"
    "  var zx = node.ox, zw = node.ow, zy = node.oy, e = 0.0001;\n"
    "  zoomed = node;\n"
    "  document.getElementById('unzoom').style.opacity = '1';\n"
    "  frames.forEach(function (g) {\n"
    "    var inside = g.ox >= zx - e && g.ox + g.ow <= zx + zw + e;\n"
    "    if (g.oy > zy) {\n"
    "      var covers = g.ox <= zx + e && g.ox + g.ow >= zx + zw - e;\n"
    "      g.style.display = covers ? '' : 'none'; g.style.opacity = covers ? '0.6' : '';\n"
    "      if (covers) place(g, PAD, W);\n"
    "    } else if (inside) {\n"
    "      g.style.display = ''; g.style.opacity = '';\n"
    "      place(g, PAD + (g.ox - zx) * W / zw, g.ow * W / zw);\n"
    "    } else { g.style.display = 'none'; }\n"
    "  });\n"
    "  if (searching) search_apply(searching);\n"
    "}\n"
    "function unzoom() {\n"
    "  zoomed = null;\n"
    "  document.getElementById('unzoom').style.opacity = '0';\n"
    "  frames.forEach(function (g) { g.style.display = ''; g.style.opacity = ''; place(g, g.ox, g.ow); });\n"
    "  if (searching) search_apply(searching);\n"
    "}\n"
    "function search_apply(re) {\n"
    "  var spans = [];\n"
    "  frames.forEach(function (g) {\n"
    "    var r = g.querySelector('rect');\n"
    "    if (re && re.test(g.fname)) { r.setAttribute('fill', 'rgb(230,0,230)'); spans.push([g.ox, g.ox + g.ow]); }\n"
    "    else r.setAttribute('fill', g.ofill);\n"
    "  });\n"
    "  if (!re) { matchedtxt.textContent = ''; return; }\n"
    "  spans.sort(function (a, b) { return a[0] - b[0]; });\n"
    "  var covered = 0, end = -1;\n"
    "  spans.forEach(function (s) {\n"
    "    if (s[0] >= end) { covered += s[1] - s[0]; end = s[1]; }\n"
    "    else if (s[1] > end) { covered += s[1] - end; end = s[1]; }\n"
    "  });\n"
    "  matchedtxt.textContent = 'Matched: ' + (100 * covered / W).toFixed(1) + '%';\n"
    "}\n"
    "function search() {\n"
    "  if (searching) { searching = null; search_apply(null); document.getElementById('search').textContent = 'Search'; return; }\n"
    "  var term = prompt('Search for (regular expression):', '');\n"
    "  if (!term) return;\n"
    "  try { searching = new RegExp(term); } catch (e) { alert('bad regular expression: ' + e); return; }\n"
    "  document.getElementById('search').textContent = 'Reset Search';\n"
    "  search_apply(searching);\n"
    "}\n"
    "]]></script>\n";

static int render(const obs_prof_profile *before, const obs_prof_profile *after, const char *title,
                  unsigned flags, char **out, size_t *len)
{
    obs_prof_profile *names = prof_profile_new();
    prof_tree t = {0};
    prof_buf b = {0};
    if (!names)
        return OBS_ENOMEM;
    int rc = prof_tree_build(after, before, flags, names, &t);
    if (rc != 0) {
        obs_prof_profile_free(names);
        return rc;
    }
    svg_ctx c = {.b = &b, .t = &t, .names = names, .diff = before != NULL};
    c.total_after = (double)t.nodes[0].total;
    c.total_before = before ? (double)before->info.weight : 0;
    c.scale = t.nodes[0].total ? SVG_WIDTH / (double)t.nodes[0].total : 0;
    if (c.diff)
        for (uint32_t i = 0; i < t.n; i++) {
            double a = c.total_after > 0 ? (double)t.nodes[i].total / c.total_after : 0;
            double o = c.total_before > 0 ? (double)t.nodes[i].other / c.total_before : 0;
            if (fabs(a - o) > c.max_delta)
                c.max_delta = fabs(a - o);
        }
    double height = (t.max_depth + 1) * FRAME_H + 84;
    c.ybase = height - 34 - FRAME_H;
    prof_buf_printf(&b,
                    "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                    "<svg version=\"1.1\" width=\"%.0f\" height=\"%.0f\" onload=\"init(evt)\" "
                    "viewBox=\"0 0 %.0f %.0f\" xmlns=\"http://www.w3.org/2000/svg\" "
                    "data-w=\"%.0f\" data-pad=\"%.0f\">\n",
                    SVG_WIDTH + 2 * SVG_PAD, height, SVG_WIDTH + 2 * SVG_PAD, height, SVG_WIDTH,
                    SVG_PAD);
    prof_buf_puts(&b, "<style type=\"text/css\">text { font-family: Verdana, sans-serif; "
                      "font-size: 12px; fill: rgb(0,0,0); } g.f:hover rect { stroke: black; "
                      "stroke-width: 0.5; cursor: pointer; } #title { font-size: 17px; } "
                      ".btn { cursor: pointer; } .btn:hover { text-decoration: underline; }"
                      "</style>\n");
    prof_buf_puts(&b, SCRIPT);
    prof_buf_printf(&b,
                    "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" fill=\"rgb(248,248,240)\"/>\n"
                    "<text id=\"title\" x=\"%.0f\" y=\"24\" text-anchor=\"middle\">",
                    (SVG_WIDTH + 2 * SVG_PAD) / 2);
    prof_buf_xml(&b, title && *title ? title : (before ? "Differential flame graph" : "Flame graph"));
    prof_buf_puts(&b, "</text>\n");
    char sub[256];
    if (before)
        snprintf(sub, sizeof sub,
                 "widths: after (%llu samples); colour: change of share from before (%llu samples), "
                 "red grew, blue shrank",
                 (unsigned long long)t.nodes[0].total, (unsigned long long)before->info.weight);
    else
        snprintf(sub, sizeof sub, "%llu samples at %u Hz of thread CPU time (%s unwinder)",
                 (unsigned long long)after->info.weight, after->info.hz,
                 after->info.unwinder == OBS_PROF_UNWIND_FP ? "frame-pointer" : "libunwind");
    prof_buf_printf(&b, "<text x=\"%.0f\" y=\"42\" text-anchor=\"middle\" fill=\"rgb(90,90,90)\">",
                    (SVG_WIDTH + 2 * SVG_PAD) / 2);
    prof_buf_xml(&b, sub);
    prof_buf_puts(&b, "</text>\n");
    prof_buf_printf(&b,
                    "<text id=\"unzoom\" class=\"btn\" x=\"%.0f\" y=\"24\" style=\"opacity:0\">Reset Zoom</text>\n"
                    "<text id=\"search\" class=\"btn\" x=\"%.0f\" y=\"24\" text-anchor=\"end\">Search</text>\n"
                    "<text id=\"matched\" x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\"></text>\n"
                    "<text id=\"details\" x=\"%.0f\" y=\"%.0f\"> </text>\n",
                    SVG_PAD, SVG_WIDTH + SVG_PAD, SVG_WIDTH + SVG_PAD, height - 12, SVG_PAD,
                    height - 12);
    if (t.nodes[0].total == 0)
        prof_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">no samples</text>\n",
                        (SVG_WIDTH + 2 * SVG_PAD) / 2, c.ybase);
    else
        emit(&c, 0, SVG_PAD);
    prof_buf_puts(&b, "</svg>\n");
    prof_tree_free(&t);
    obs_prof_profile_free(names);
    return prof_buf_finish(&b, out, len);
}

int obs_prof_render_svg(const obs_prof_profile *p, const char *title, unsigned flags, char **out,
                        size_t *len)
{
    return render(NULL, p, title, flags, out, len);
}

int obs_prof_render_diff_svg(const obs_prof_profile *before, const obs_prof_profile *after,
                             const char *title, unsigned flags, char **out, size_t *len)
{
    return render(before, after, title, flags, out, len);
}
