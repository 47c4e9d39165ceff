// oneDNN 2.6 convolution probe: fwd / bwd-data / bwd-weights, plain NCHW/OIHW vs format_tag_any (+reorders).
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define CK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s:%d %s -> %d\n", __FILE__, __LINE__, #x, s_); exit(1);} } while (0)
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
typedef struct { const char *name; int n, ci, h, w, co, k, s, p, mult; } shape_t;
static dnnl_engine_t eng; static dnnl_stream_t strm;

static dnnl_memory_t mem(const dnnl_memory_desc_t *md, void *h) { dnnl_memory_t m; CK(dnnl_memory_create(&m, md, eng, h ? h : DNNL_MEMORY_ALLOCATE)); return m; }
static void fill(dnnl_memory_t m) { float *p; CK(dnnl_memory_get_data_handle(m, (void**)&p)); const dnnl_memory_desc_t *md; CK(dnnl_memory_get_memory_desc(m, &md));
  size_t c = dnnl_memory_desc_get_size(md) / 4; for (size_t i = 0; i < c; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f; }
static double timeit(dnnl_primitive_t p, int na, dnnl_exec_arg_t *a, int it) {
  for (int i = 0; i < 2; i++) CK(dnnl_primitive_execute(p, strm, na, a)); CK(dnnl_stream_wait(strm));
  double best = 1e9; for (int i = 0; i < it; i++) { double t = now(); CK(dnnl_primitive_execute(p, strm, na, a)); CK(dnnl_stream_wait(strm)); t = now() - t; if (t < best) best = t; } return best; }
static double reorder_time(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, int it) {
  if (dnnl_memory_desc_equal(a, b)) return 0;
  dnnl_primitive_desc_t pd; CK(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL)); dnnl_primitive_t p; CK(dnnl_primitive_create(&p, pd));
  dnnl_memory_t ma = mem(a, NULL), mb = mem(b, NULL); fill(ma);
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ma}, {DNNL_ARG_TO, mb}}; double t = timeit(p, 2, args, it);
  dnnl_primitive_destroy(p); dnnl_primitive_desc_destroy(pd); dnnl_memory_destroy(ma); dnnl_memory_destroy(mb); return t; }

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2, it = argc > 2 ? atoi(argv[2]) : 5, only = argc > 3 ? atoi(argv[3]) : -1;
  omp_set_num_threads(threads);
  const dnnl_version_t *v = dnnl_version();
  fprintf(stderr, "oneDNN %d.%d.%d cpu_runtime=%u isa=%d threads=%d\n", v->major, v->minor, v->patch, v->cpu_runtime, (int)dnnl_get_effective_cpu_isa(), omp_get_max_threads());
  CK(dnnl_engine_create(&eng, dnnl_cpu, 0)); CK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
  shape_t S[] = {
    {"r20 stem 3-16 32", 128, 3, 32, 32, 16, 3, 1, 1, 1},
    {"r20 16-16 32", 128, 16, 32, 32, 16, 3, 1, 1, 6},
    {"r20 16-32 s2", 128, 16, 32, 32, 32, 3, 2, 1, 1},
    {"r20 32-32 16", 128, 32, 16, 16, 32, 3, 1, 1, 5},
    {"r20 32-64 s2", 128, 32, 16, 16, 64, 3, 2, 1, 1},
    {"r20 64-64 8", 128, 64, 8, 8, 64, 3, 1, 1, 5},
    {"r18 stem 3-64 32", 128, 3, 32, 32, 64, 3, 1, 1, 1},
    {"r18 64-64 32", 128, 64, 32, 32, 64, 3, 1, 1, 4},
    {"r18 64-128 s2", 128, 64, 32, 32, 128, 3, 2, 1, 1},
    {"r18 1x1 64-128 s2", 128, 64, 32, 32, 128, 1, 2, 0, 1},
    {"r18 128-128 16", 128, 128, 16, 16, 128, 3, 1, 1, 3},
    {"r18 128-256 s2", 128, 128, 16, 16, 256, 3, 2, 1, 1},
    {"r18 1x1 128-256 s2", 128, 128, 16, 16, 256, 1, 2, 0, 1},
    {"r18 256-256 8", 128, 256, 8, 8, 256, 3, 1, 1, 3},
    {"r18 256-512 s2", 128, 256, 8, 8, 512, 3, 2, 1, 1},
    {"r18 1x1 256-512 s2", 128, 256, 8, 8, 512, 1, 2, 0, 1},
    {"r18 512-512 4", 128, 512, 4, 4, 512, 3, 1, 1, 3},
  };
  int ns = sizeof S / sizeof S[0];
  printf("%-20s %4s | %-6s %8s %8s %8s | %8s %8s %8s %8s | %s\n", "shape", "mult", "layout", "fwd ms", "bwdD ms", "bwdW ms", "GF/s f", "GF/s d", "GF/s w", "reord ms", "impl fwd/bwdD/bwdW");
  for (int si = 0; si < ns; si++) {
    if (only >= 0 && si != only) continue;
    shape_t s = S[si]; int ho = (s.h + 2 * s.p - s.k) / s.s + 1, wo = (s.w + 2 * s.p - s.k) / s.s + 1;
    double gf = 2.0 * s.n * s.co * ho * wo * s.ci * s.k * s.k / 1e9;
    dnnl_dims_t xd = {s.n, s.ci, s.h, s.w}, wd = {s.co, s.ci, s.k, s.k}, yd = {s.n, s.co, ho, wo}, st = {s.s, s.s}, pl = {s.p, s.p}, pr = {s.p, s.p};
    // Right padding as oneDNN wants it: (ho-1)*s - h + k - pl
    pr[0] = (ho - 1) * s.s - s.h + s.k - s.p; pr[1] = (wo - 1) * s.s - s.w + s.k - s.p;
    for (int layout = 0; layout < 2; layout++) {
      dnnl_format_tag_t xt = layout ? dnnl_format_tag_any : dnnl_nchw, wt = layout ? dnnl_format_tag_any : dnnl_oihw;
      dnnl_memory_desc_t xm, wm, ym; CK(dnnl_memory_desc_init_by_tag(&xm, 4, xd, dnnl_f32, xt)); CK(dnnl_memory_desc_init_by_tag(&wm, 4, wd, dnnl_f32, wt)); CK(dnnl_memory_desc_init_by_tag(&ym, 4, yd, dnnl_f32, xt));
      dnnl_convolution_desc_t fd, bd, bw;
      CK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xm, &wm, NULL, &ym, st, pl, pr));
      dnnl_primitive_desc_t fpd, bdpd, bwpd; CK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
      const dnnl_memory_desc_t *fx = dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0), *fw = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0), *fy = dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
      CK(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &xm, &wm, &ym, st, pl, pr));
      CK(dnnl_primitive_desc_create(&bdpd, &bd, NULL, eng, fpd));
      CK(dnnl_convolution_backward_weights_desc_init(&bw, dnnl_convolution_direct, &xm, &wm, NULL, &ym, st, pl, pr));
      CK(dnnl_primitive_desc_create(&bwpd, &bw, NULL, eng, fpd));
      const char *i1, *i2, *i3; CK(dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &i1)); CK(dnnl_primitive_desc_query(bdpd, dnnl_query_impl_info_str, 0, &i2)); CK(dnnl_primitive_desc_query(bwpd, dnnl_query_impl_info_str, 0, &i3));
      const dnnl_memory_desc_t *dxm = dnnl_primitive_desc_query_md(bdpd, dnnl_query_diff_src_md, 0), *dym = dnnl_primitive_desc_query_md(bdpd, dnnl_query_diff_dst_md, 0), *bww = dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_weights_md, 0), *bwx = dnnl_primitive_desc_query_md(bwpd, dnnl_query_src_md, 0), *bwy = dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_dst_md, 0), *bdw = dnnl_primitive_desc_query_md(bdpd, dnnl_query_weights_md, 0);
      dnnl_memory_t X = mem(fx, NULL), W = mem(fw, NULL), Y = mem(fy, NULL), DX = mem(dxm, NULL), DY = mem(dym, NULL), DW = mem(bww, NULL), X2 = mem(bwx, NULL), DY2 = mem(bwy, NULL), W2 = mem(bdw, NULL);
      fill(X); fill(W); fill(DY); fill(X2); fill(DY2); fill(W2);
      dnnl_primitive_t pf, pd, pw; CK(dnnl_primitive_create(&pf, fpd)); CK(dnnl_primitive_create(&pd, bdpd)); CK(dnnl_primitive_create(&pw, bwpd));
      dnnl_exec_arg_t af[3] = {{DNNL_ARG_SRC, X}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DST, Y}};
      dnnl_exec_arg_t ad[3] = {{DNNL_ARG_DIFF_DST, DY}, {DNNL_ARG_WEIGHTS, W2}, {DNNL_ARG_DIFF_SRC, DX}};
      dnnl_exec_arg_t aw[3] = {{DNNL_ARG_SRC, X2}, {DNNL_ARG_DIFF_DST, DY2}, {DNNL_ARG_DIFF_WEIGHTS, DW}};
      double tf = timeit(pf, 3, af, it), td = timeit(pd, 3, ad, it), tw = timeit(pw, 3, aw, it);
      double tr = 0;
      if (layout) { // reorders needed when the rest of the engine is NCHW: x->fwd fmt, y->nchw, dy->bwd fmt (x2), dx->nchw, w->fmt(x2), dw->oihw
        dnnl_memory_desc_t px, pw_, py; CK(dnnl_memory_desc_init_by_tag(&px, 4, xd, dnnl_f32, dnnl_nchw)); CK(dnnl_memory_desc_init_by_tag(&pw_, 4, wd, dnnl_f32, dnnl_oihw)); CK(dnnl_memory_desc_init_by_tag(&py, 4, yd, dnnl_f32, dnnl_nchw));
        tr = reorder_time(&px, fx, it) + reorder_time(fy, &py, it) + reorder_time(&py, dym, it) + reorder_time(dxm, &px, it) + reorder_time(&px, bwx, it) + reorder_time(&py, bwy, it) + reorder_time(&pw_, fw, it) + reorder_time(&pw_, bdw, it) + reorder_time(bww, &pw_, it);
      }
      printf("%-20s %4d | %-6s %8.3f %8.3f %8.3f | %8.1f %8.1f %8.1f %8.3f | %s / %s / %s\n", s.name, s.mult, layout ? "any" : "nchw", tf * 1e3, td * 1e3, tw * 1e3, gf / tf, gf / td, gf / tw, tr * 1e3, i1, i2, i3);
      fflush(stdout);
      dnnl_primitive_destroy(pf); dnnl_primitive_destroy(pd); dnnl_primitive_destroy(pw);
      dnnl_primitive_desc_destroy(fpd); dnnl_primitive_desc_destroy(bdpd); dnnl_primitive_desc_destroy(bwpd);
      dnnl_memory_t ms[] = {X, W, Y, DX, DY, DW, X2, DY2, W2}; for (int i = 0; i < 9; i++) dnnl_memory_destroy(ms[i]);
    }
  }
  return 0;
}
