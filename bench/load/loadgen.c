/*
 * The benchmark's load generator in C: the same six scenarios, phases, request bytes, delivery checks,
 * latency samples and CPU/RSS accounting as bench/load/main.ts, on one thread with epoll, so that it
 * stays far from saturating its core when it drives Nchan.
 *
 *   gcc -O2 -Wall -Wextra -std=gnu11 -o loadgen bench/load/loadgen.c
 *   taskset -c 1 ./loadgen --scenario fanout --port 9301 --publish-path /publish \
 *     --subscribe-path /activity --eventsource-path /activity --server-pids 1234 --aux-pids '' \
 *     --subscribe-ports 9301 --channel-prefix b0fanoutx --warmup-ms 1000 --duration-ms 3000 \
 *     --rounds 20 --many 10000
 *
 * Flags may also be written --flag=value. --aux-pids may be left out (no helper processes). Prints one
 * JSON line (LoadResult of bench/load/protocol.ts) on stdout and exits 0; exits 2 on bad flags and 1
 * (with a message on stderr) when the scenario cannot run.
 *
 * Design: edge-triggered epoll (a read shorter than the buffer means the socket is drained: no extra
 * read to see EAGAIN); one shared read buffer (a connection's leftover bytes are kept only
 * when a response or an event-stream chunk is split across reads, and copied in front of the next
 * read); requests are pre-built (a long-poll channel caches the request of its newest cursor, which
 * every subscriber of a lockstep channel shares, reference-counted); writes go straight to the socket
 * and only a partial write is queued (EPOLLOUT). A long-poll connection has at most one request in
 * flight.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* NAN, isnan, isfinite: macros, no libm needed */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------ */
/* Basics. */

#define BODY_DIGITS 12
#define CONNECT_BURST 256
#define READ_BUFFER_SIZE (256 * 1024)
#define READ_ROOM_MIN (64 * 1024)

static void reset_all_connections(void);

static _Noreturn void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("load generator failed: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  reset_all_connections();
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fail("out of memory");
  return p;
}
static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) fail("out of memory");
  return p;
}
static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) fail("out of memory");
  return p;
}

/** Ensures a growable byte buffer holds `need` bytes. */
static void reserve(char **buf, uint32_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  if (c > UINT32_MAX) fail("buffer too large");
  *buf = xrealloc(*buf, c);
  *cap = (uint32_t)c;
}

/** performance.now(): monotonic milliseconds. */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/** Math.ceil for finite doubles (V8 computes Math.round from it); no libm. */
static double js_ceil(double x) {
  if (!(x > -4503599627370496.0 && x < 4503599627370496.0)) return x; /* NaN, inf, already whole */
  double t = (double)(int64_t)x;
  return t < x ? t + 1 : t;
}
/** Math.round: the nearest integer, halves toward +infinity. */
static double js_round(double x) {
  double c = js_ceil(x);
  return c - 0.5 > x ? c - 1 : c;
}
static double round2(double x) { return js_round(x * 100) / 100; }
/** pct() of main.ts: a share of one core as a percentage with one decimal. */
static double pct(double share) { return js_round(share * 1000) / 10; }

/** JavaScript's WhiteSpace and LineTerminator characters within latin1. */
static int js_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || c == 0xa0; }

/** Number(text) for a latin1 string; NaN when it is not a number. */
static double js_number(const char *s, size_t n) {
  while (n && js_space((unsigned char)s[0])) s++, n--;
  while (n && js_space((unsigned char)s[n - 1])) n--;
  if (n == 0) return 0;
  if (n > 2 && s[0] == '0') {
    int base = (s[1] | 0x20) == 'x' ? 16 : (s[1] | 0x20) == 'o' ? 8 : (s[1] | 0x20) == 'b' ? 2 : 0;
    if (base) {
      double v = 0;
      for (size_t i = 2; i < n; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
        else return NAN;
        if (d >= base) return NAN;
        v = v * base + d;
      }
      return v;
    }
  }
  size_t i = 0;
  int neg = 0;
  if (s[0] == '+' || s[0] == '-') neg = s[0] == '-', i = 1;
  if (n - i == 8 && memcmp(s + i, "Infinity", 8) == 0) return neg ? -INFINITY : INFINITY;
  size_t digits = 0, j = i;
  while (j < n && s[j] >= '0' && s[j] <= '9') j++, digits++;
  if (j < n && s[j] == '.') {
    j++;
    while (j < n && s[j] >= '0' && s[j] <= '9') j++, digits++;
  }
  if (digits == 0) return NAN;
  if (j < n && (s[j] | 0x20) == 'e') {
    j++;
    if (j < n && (s[j] == '+' || s[j] == '-')) j++;
    size_t e = 0;
    while (j < n && s[j] >= '0' && s[j] <= '9') j++, e++;
    if (e == 0) return NAN;
  }
  if (j != n) return NAN;
  char tmp[128];
  char *copy = n < sizeof tmp ? tmp : xmalloc(n + 1);
  memcpy(copy, s, n);
  copy[n] = 0;
  double v = strtod(copy, NULL);
  if (copy != tmp) free(copy);
  return v;
}

/**
 * parseSeq of verify.ts: the body as a number when it is an integer, else -1. Negative integers are
 * returned as -1 too (DeliveryCheck counts every negative as garbled); huge ones are capped.
 */
static int64_t parse_seq(const char *s, size_t n) {
  if (n == BODY_DIGITS) { /* the fast path: a well-formed body */
    int64_t v = 0;
    size_t i = 0;
    for (; i < n; i++) {
      unsigned d = (unsigned char)s[i] - '0';
      if (d > 9) break;
      v = v * 10 + d;
    }
    if (i == n) return v;
  }
  double x = js_number(s, n);
  if (!isfinite(x) || js_ceil(x) != x) return -1;
  if (x < 0) return -1;
  if (x > 4e18) return INT64_C(4000000000000000000);
  return (int64_t)x;
}

/* ------------------------------------------------------------------------------------------------ */
/* Configuration (command-line flags). */

enum Scenario { S_FANOUT, S_CHANNELS, S_LATENCY, S_PUBLISH, S_EVENTSOURCE, S_MEMORY, S_WEBSOCKET };
static const char *const SCENARIO_NAMES[] = {"fanout", "channels", "latency", "publish", "eventsource", "memory", "websocket"};
enum { N_SCENARIOS = sizeof SCENARIO_NAMES / sizeof SCENARIO_NAMES[0] };

static struct {
  int scenario;
  int port;
  const char *publish_path, *subscribe_path, *eventsource_path, *websocket_path, *channel_prefix;
  int *server_pids, n_server_pids;
  int *aux_pids, n_aux_pids;
  int *subscribe_ports, n_subscribe_ports;
  long warmup_ms, duration_ms, rounds, many;
} cfg;

static _Noreturn void usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\nusage: loadgen --scenario fanout|channels|latency|publish|eventsource|memory|websocket --port N\n"
        "  --publish-path P --subscribe-path P --eventsource-path P [--websocket-path P] --server-pids PID[,PID...]\n"
        "  [--aux-pids PID,...] --subscribe-ports PORT[,PORT...] --channel-prefix STR\n"
        "  --warmup-ms N --duration-ms N --rounds N --many N\n",
        stderr);
  va_end(ap);
  exit(2);
}

static long parse_long(const char *flag, const char *v, long min, long max) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!*v || *end || errno || x < min || x > max) usage("%s: \"%s\" is not a whole number in [%ld, %ld]", flag, v, min, max);
  return x;
}

static int parse_list(const char *flag, const char *v, int **out, long min, long max) {
  int n = 0;
  *out = NULL;
  if (!*v) return 0;
  char *copy = strdup(v);
  if (!copy) fail("out of memory");
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    *out = xrealloc(*out, sizeof(int) * (size_t)(n + 1));
    (*out)[n++] = (int)parse_long(flag, tok, min, max);
  }
  free(copy);
  return n;
}

static void parse_args(int argc, char **argv) {
  static const char *const FLAGS[] = {"--scenario",    "--port",           "--publish-path", "--subscribe-path", "--eventsource-path",
                                      "--server-pids", "--aux-pids",       "--subscribe-ports", "--channel-prefix", "--warmup-ms",
                                      "--duration-ms", "--rounds",         "--many",            "--websocket-path"};
  enum { NFLAGS = sizeof FLAGS / sizeof FLAGS[0] };
  int seen[NFLAGS] = {0};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *value = NULL;
    size_t name_len = strlen(arg);
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    if (eq) name_len = (size_t)(eq - arg), value = eq + 1;
    int f = -1;
    for (int k = 0; k < NFLAGS; k++)
      if (strlen(FLAGS[k]) == name_len && strncmp(FLAGS[k], arg, name_len) == 0) f = k;
    if (f < 0) usage("unknown argument \"%s\"", arg);
    if (!value) {
      if (i + 1 >= argc) usage("%s needs a value", FLAGS[f]);
      value = argv[++i];
    }
    seen[f] = 1;
    switch (f) {
      case 0: {
        int s = -1;
        for (int k = 0; k < N_SCENARIOS; k++)
          if (strcmp(value, SCENARIO_NAMES[k]) == 0) s = k;
        if (s < 0) usage("unknown scenario \"%s\" (known: fanout, channels, latency, publish, eventsource, memory, websocket)", value);
        cfg.scenario = s;
        break;
      }
      case 1: cfg.port = (int)parse_long(FLAGS[f], value, 1, 65535); break;
      case 2: cfg.publish_path = value; break;
      case 3: cfg.subscribe_path = value; break;
      case 4: cfg.eventsource_path = value; break;
      case 5: cfg.n_server_pids = parse_list(FLAGS[f], value, &cfg.server_pids, 1, INT32_MAX); break;
      case 6: cfg.n_aux_pids = parse_list(FLAGS[f], value, &cfg.aux_pids, 1, INT32_MAX); break;
      case 7: cfg.n_subscribe_ports = parse_list(FLAGS[f], value, &cfg.subscribe_ports, 1, 65535); break;
      case 8: cfg.channel_prefix = value; break;
      case 9: cfg.warmup_ms = parse_long(FLAGS[f], value, 0, 86400000); break;
      case 10: cfg.duration_ms = parse_long(FLAGS[f], value, 0, 86400000); break;
      case 11: cfg.rounds = parse_long(FLAGS[f], value, 0, 100000000); break;
      case 12: cfg.many = parse_long(FLAGS[f], value, 1, 10000000); break;
      case 13: cfg.websocket_path = value; break;
    }
  }
  for (int k = 0; k < NFLAGS; k++)
    if (!seen[k] && k != 6 && k != 13) usage("missing %s", FLAGS[k]);
  if (!cfg.websocket_path) cfg.websocket_path = cfg.subscribe_path;
  if (cfg.n_subscribe_ports == 0) usage("--subscribe-ports needs at least one port");
}

/* ------------------------------------------------------------------------------------------------ */
/* Figures: delivery checks, latency samples, problems. */

static struct {
  int64_t lost, duplicated, reordered, garbled;
} check_counts;

/** DeliveryCheck.check: `seq` against the subscriber's last one; returns its last one now. */
static inline int64_t check_seq(int64_t last, int64_t seq) {
  if (seq < 0) {
    check_counts.garbled++;
    return last;
  }
  if (seq == last + 1) return seq;
  if (seq == last) {
    check_counts.duplicated++;
    return last;
  }
  if (seq < last) {
    check_counts.reordered++;
    return last;
  }
  check_counts.lost += seq - last - 1;
  return seq;
}

static struct {
  double *v;
  size_t n, cap;
} samples;

static void latency_add(double ms) {
  if (samples.n == samples.cap) {
    samples.cap = samples.cap ? samples.cap * 2 : 1 << 16;
    samples.v = xrealloc(samples.v, samples.cap * sizeof(double));
  }
  samples.v[samples.n++] = ms;
}

typedef struct {
  size_t count;
  double p50, p90, p99, max;
} Summary;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/** Latencies.summary: exact percentiles over every sample, rounded to 0.01 ms. */
static int latency_summary(Summary *out) {
  if (samples.n == 0) return 0;
  qsort(samples.v, samples.n, sizeof(double), cmp_double);
  size_t n = samples.n;
#define AT(q) round2(samples.v[(size_t)(q * (double)n) < n - 1 ? (size_t)(q * (double)n) : n - 1])
  out->count = n;
  out->p50 = AT(0.5);
  out->p90 = AT(0.9);
  out->p99 = AT(0.99);
  out->max = round2(samples.v[n - 1]);
#undef AT
  return 1;
}

static struct {
  char **what;
  long *count;
  int n;
} problems;

/** Counts one occurrence of a problem; the report lists each as "what (xN)" in first-seen order. */
static void problem(const char *fmt, ...) {
  char *text;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&text, fmt, ap);
  va_end(ap);
  if (n < 0) fail("out of memory");
  for (int i = 0; i < problems.n; i++)
    if (strcmp(problems.what[i], text) == 0) {
      problems.count[i]++;
      free(text);
      return;
    }
  problems.what = xrealloc(problems.what, sizeof(char *) * (size_t)(problems.n + 1));
  problems.count = xrealloc(problems.count, sizeof(long) * (size_t)(problems.n + 1));
  problems.what[problems.n] = text;
  problems.count[problems.n++] = 1;
}

enum Phase { WARMUP, MEASURE, DRAIN };
static struct {
  enum Phase phase;
  int64_t deliveries, publishes;
  int stopped;
} stats;
#define COUNTING (stats.phase == MEASURE)

/* ------------------------------------------------------------------------------------------------ */
/* Measuring window: CPU of this process, of the server and helpers, and of the rest of the machine. */

static ssize_t read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t have = 0;
  while (have < cap - 1) {
    ssize_t n = read(fd, buf + have, cap - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += (size_t)n;
  }
  close(fd);
  buf[have] = 0;
  return (ssize_t)have;
}

/** utime + stime of the processes, in clock ticks; NaN when one cannot be read. */
static double cpu_ticks(const int *pids, int n) {
  double ticks = 0;
  for (int i = 0; i < n; i++) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
    if (read_file(path, buf, sizeof buf) <= 0) return NAN;
    char *p = strrchr(buf, ')');
    if (!p || !p[1]) return NAN;
    p += 2; /* fields[0] is the state */
    for (int field = 0; field < 11; field++) {
      p = strchr(p, ' ');
      if (!p) return NAN;
      p++;
    }
    char *end;
    double utime = strtod(p, &end);
    double stime = strtod(end, NULL);
    ticks += utime + stime;
  }
  return ticks;
}

/** VmRSS of the server processes in bytes; stops the run when a status file cannot be read. */
static double server_rss_bytes(void) {
  double bytes = 0;
  for (int i = 0; i < cfg.n_server_pids; i++) {
    char path[64], buf[16384];
    snprintf(path, sizeof path, "/proc/%d/status", cfg.server_pids[i]);
    if (read_file(path, buf, sizeof buf) < 0) fail("cannot read %s: %s", path, strerror(errno));
    char *p = strstr(buf, "VmRSS:");
    if (!p) return NAN;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return NAN;
    bytes += strtod(p, NULL) * 1024;
  }
  return bytes;
}

/** Busy ticks of every CPU (user + nice + system) and steal ticks, from /proc/stat. */
static void machine_ticks(double *busy, double *steal) {
  char buf[4096];
  *busy = *steal = NAN;
  if (read_file("/proc/stat", buf, sizeof buf) <= 0) return;
  char *p = buf;
  while (*p && *p != ' ') p++;
  double f[8];
  for (int i = 0; i < 8; i++) {
    char *end;
    f[i] = strtod(p, &end);
    if (end == p) return;
    p = end;
  }
  *busy = f[0] + f[1] + f[2];
  *steal = f[7];
}

static double own_cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

typedef struct {
  double t0, cpu0, server0, aux0, busy0, steal0;
  double elapsed_ms, loadgen_cpu, server_cpu, aux_cpu, other_cpu, steal_cpu;
} Window;

static double tick_ms; /* 10 ms at USER_HZ 100 */

static void window_start(Window *w) {
  w->t0 = now_ms();
  w->cpu0 = own_cpu_ms();
  w->server0 = cpu_ticks(cfg.server_pids, cfg.n_server_pids);
  w->aux0 = cpu_ticks(cfg.aux_pids, cfg.n_aux_pids);
  machine_ticks(&w->busy0, &w->steal0);
}

static void window_stop(Window *w) {
  w->elapsed_ms = now_ms() - w->t0;
  double loadgen_ms = own_cpu_ms() - w->cpu0;
  double server_ms = (cpu_ticks(cfg.server_pids, cfg.n_server_pids) - w->server0) * tick_ms;
  double aux_ms = (cpu_ticks(cfg.aux_pids, cfg.n_aux_pids) - w->aux0) * tick_ms;
  w->aux_cpu = pct(aux_ms / w->elapsed_ms);
  w->loadgen_cpu = pct(loadgen_ms / w->elapsed_ms);
  w->server_cpu = pct(server_ms / w->elapsed_ms);
  double busy, steal;
  machine_ticks(&busy, &steal);
  double machine_ms = (busy - w->busy0) * tick_ms;
  w->steal_cpu = pct((steal - w->steal0) * tick_ms / w->elapsed_ms);
  double other = pct((machine_ms - loadgen_ms - server_ms - aux_ms) / w->elapsed_ms);
  w->other_cpu = isnan(other) ? other : other < 0 ? 0 : other; /* Math.max(0, x) */
}

/* ------------------------------------------------------------------------------------------------ */
/* Connections. */

enum Role { R_NONE, R_LONGPOLL, R_EVENTSOURCE, R_WEBSOCKET, R_PUBLISHER, R_PROBE, R_PUBLISH_ONLY };
enum State { CONNECTING, OPEN, CLOSED };

typedef struct Conn {
  int fd;
  uint16_t port;
  uint8_t role, state;
  /** A 200 text/event-stream answer made this connection a stream; `chunked` is its framing. */
  uint8_t streaming, chunked;
  /** An unparsable chunk size: the stream is ignored from there on (main.ts stalls the same way). */
  uint8_t stream_broken;
  uint8_t want_out;
  /** Left of the current chunk of a chunked stream; -1 while reading a chunk-size line. */
  int64_t chunk_left;
  void *owner;
  /** Bytes of a response (or of stream framing) split across reads, put in front of the next read. */
  char *pend;
  uint32_t pend_len, pend_cap;
  /** What a partial write left, sent on EPOLLOUT. */
  char *out;
  uint32_t out_len, out_off, out_cap;
  /** Event-stream text not yet ended by a blank line. */
  char *ev;
  uint32_t ev_len, ev_cap;
} Conn;

typedef struct {
  int status;
  int chunked;
  int64_t content_length;
  const char *content_type, *last_modified, *etag; /* NULL when absent */
  uint32_t content_type_len, last_modified_len, etag_len;
} Head;

static int epfd;
static char *rbuf;
static uint32_t rbuf_cap;
static Conn **all_conns;
static size_t n_all_conns, all_conns_cap;

static void dispatch(Conn *c, const Head *h, const char *body, size_t len);
static void stream_data(Conn *c, const char *data, size_t len);
static void conn_closed(Conn *c);

static void ep_mod(Conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

/** The peer closed the connection, or it failed. */
static void conn_lost(Conn *c) {
  if (c->state == CLOSED) return;
  close(c->fd);
  c->fd = -1;
  c->state = CLOSED;
  conn_closed(c);
}

/** Closes with an RST: no TIME_WAIT left behind, so back-to-back runs do not run out of ports. */
static void conn_reset(Conn *c) {
  if (c->state == CLOSED) return;
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c->fd);
  c->fd = -1;
  c->state = CLOSED;
}

static void conn_write(Conn *c, const char *data, size_t len) {
  if (c->state != OPEN) return; /* as a write on a destroyed socket: dropped */
  if (c->out_len == 0) {
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n == (ssize_t)len) return;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_lost(c);
        return;
      }
      n = 0;
    }
    data += n;
    len -= (size_t)n;
  }
  reserve(&c->out, &c->out_cap, (size_t)c->out_len + len);
  memcpy(c->out + c->out_len, data, len);
  c->out_len += (uint32_t)len;
  if (!c->want_out) {
    c->want_out = 1;
    ep_mod(c, EPOLLIN | EPOLLOUT | EPOLLET);
  }
}

static void conn_flush(Conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      conn_lost(c);
      return;
    }
    c->out_off += (uint32_t)n;
  }
  c->out_len = c->out_off = 0;
  if (c->want_out) {
    c->want_out = 0;
    ep_mod(c, EPOLLIN | EPOLLET);
  }
}

/* -- Response parsing. -- */

/** Whether the header line [at, eol) has the (lower-case, colon-ended) name. */
static inline int is_header(const char *b, size_t at, size_t eol, const char *name, size_t name_len) {
  if (eol - at < name_len) return 0;
  for (size_t i = 0; i < name_len; i++)
    if (((unsigned char)b[at + i] | 0x20) != (unsigned char)name[i]) return 0;
  return 1;
}

static inline size_t value_start(const char *b, size_t at, size_t eol) {
  while (at < eol && b[at] == ' ') at++;
  return at;
}

#define HEADER(b, at, eol, lit) is_header(b, at, eol, lit, sizeof(lit) - 1)

/** Parses the head in b[start, end) (end is past the last header line's CRLF), as raw-http.ts does. */
static void parse_head(const char *b, size_t start, size_t end, Head *h) {
  memset(h, 0, sizeof *h);
  if (end - start > 12)
    h->status = (b[start + 9] - '0') * 100 + (b[start + 10] - '0') * 10 + (b[start + 11] - '0');
  const char *cr = memchr(b + start, '\r', end - start);
  size_t at = (size_t)(cr - b) + 2;
  while (at < end) {
    size_t eol = at;
    while (b[eol] != '\r') eol++;
    switch ((unsigned char)b[at] | 0x20) {
      case 'c':
        if (HEADER(b, at, eol, "content-length:")) {
          int64_t n = 0;
          for (size_t i = value_start(b, at + 15, eol); i < eol && b[i] != ' '; i++) {
            n = n * 10 + (b[i] - '0');
            if (n > (INT64_C(1) << 40) || n < -(INT64_C(1) << 40)) n = INT64_C(1) << 40;
          }
          h->content_length = n < 0 ? 0 : n;
        } else if (HEADER(b, at, eol, "content-type:")) {
          size_t v = value_start(b, at + 13, eol);
          h->content_type = b + v;
          h->content_type_len = (uint32_t)(eol - v);
        }
        break;
      case 'l':
        if (HEADER(b, at, eol, "last-modified:")) {
          size_t v = value_start(b, at + 14, eol);
          h->last_modified = b + v;
          h->last_modified_len = (uint32_t)(eol - v);
        }
        break;
      case 'e':
        if (HEADER(b, at, eol, "etag:")) {
          size_t v = value_start(b, at + 5, eol);
          h->etag = b + v;
          h->etag_len = (uint32_t)(eol - v);
        }
        break;
      case 't':
        if (HEADER(b, at, eol, "transfer-encoding:")) {
          size_t v = value_start(b, at + 18, eol), e = eol;
          while (v < e && js_space((unsigned char)b[v])) v++;
          while (e > v && js_space((unsigned char)b[e - 1])) e--;
          h->chunked = e - v == 7 && strncasecmp(b + v, "chunked", 7) == 0;
        }
        break;
    }
    at = eol + 2;
  }
}

/** parseInt(text, 16) of a chunk-size line; -2 for NaN, -1 for negative sizes. */
static int64_t parse_chunk_size(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && js_space((unsigned char)s[i])) i++;
  int neg = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (n - i >= 2 && s[i] == '0' && (s[i + 1] | 0x20) == 'x') i += 2;
  int64_t v = 0;
  size_t digits = 0;
  for (; i < n; i++, digits++) {
    int c = (unsigned char)s[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
    else break;
    if (v < (INT64_C(1) << 40)) v = v * 16 + d;
  }
  if (digits == 0) return -2;
  return neg && v > 0 ? -1 : v;
}

/** Stream bytes in b[off, len): de-chunked when chunked. Returns how far it got (the rest is kept). */
static size_t stream_feed(Conn *c, const char *b, size_t off, size_t len) {
  if (c->stream_broken) return len;
  if (!c->chunked) {
    if (off < len) stream_data(c, b + off, len - off);
    return len;
  }
  while (off < len && c->state != CLOSED) {
    if (c->chunk_left < 0) {
      const char *eol = memmem(b + off, len - off, "\r\n", 2);
      if (!eol) break;
      int64_t size = parse_chunk_size(b + off, (size_t)(eol - (b + off)));
      off = (size_t)(eol - b) + 2;
      if (size == -2) {
        c->stream_broken = 1;
        return len;
      }
      c->chunk_left = size;
      continue;
    }
    if (c->chunk_left == 0) { /* a chunk's data is followed by CRLF */
      if (len - off < 2) break;
      off += 2;
      c->chunk_left = -1;
      continue;
    }
    size_t take = (size_t)c->chunk_left < len - off ? (size_t)c->chunk_left : len - off;
    stream_data(c, b + off, take);
    off += take;
    c->chunk_left -= (int64_t)take;
  }
  return off;
}

/** Parses whatever complete responses b[0, len) holds; returns where the unfinished rest starts. */
static size_t process(Conn *c, const char *b, size_t len) {
  if (c->streaming) return stream_feed(c, b, 0, len);
  size_t off = 0;
  while (off < len) {
    const char *end = memmem(b + off, len - off, "\r\n\r\n", 4);
    if (!end) break;
    Head h;
    parse_head(b, off, (size_t)(end - b) + 2, &h);
    size_t body = (size_t)(end - b) + 4;
    if ((h.status == 200 && h.content_type && h.content_type_len >= 17 && memcmp(h.content_type, "text/event-stream", 17) == 0) ||
        (h.status == 101 && c->role == R_WEBSOCKET)) {
      c->streaming = 1;
      c->chunked = (uint8_t)h.chunked;
      c->chunk_left = -1;
      dispatch(c, &h, b + body, 0);
      if (c->state == CLOSED) return len;
      return stream_feed(c, b, body, len);
    }
    size_t stop;
    if (h.chunked) {
      /* Chunked non-stream bodies are rare here (error pages): read until the 0-size chunk. */
      if (len - body >= 5 && memcmp(b + body, "0\r\n\r\n", 5) == 0) {
        stop = body + 5;
      } else {
        const char *e = memmem(b + body, len - body, "\r\n0\r\n\r\n", 7);
        if (!e) break;
        stop = (size_t)(e - b) + 7;
      }
    } else {
      if ((int64_t)(len - body) < h.content_length) break;
      stop = body + (size_t)h.content_length;
    }
    off = stop;
    dispatch(c, &h, b + body, stop - body);
    if (c->state == CLOSED) return len;
  }
  return off;
}

static void conn_readable(Conn *c) {
  for (;;) {
    size_t have = c->pend_len;
    if ((size_t)rbuf_cap < have + READ_ROOM_MIN) reserve(&rbuf, &rbuf_cap, have + READ_ROOM_MIN);
    if (have) memcpy(rbuf, c->pend, have);
    size_t room = rbuf_cap - have;
    ssize_t n = read(c->fd, rbuf + have, room);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      conn_lost(c);
      return;
    }
    if (n == 0) {
      conn_lost(c);
      return;
    }
    c->pend_len = 0;
    size_t len = have + (size_t)n;
    size_t off = process(c, rbuf, len);
    if (c->state == CLOSED) return;
    if (off < len) {
      reserve(&c->pend, &c->pend_cap, len - off);
      memcpy(c->pend, rbuf + off, len - off);
      c->pend_len = (uint32_t)(len - off);
    }
    /* Edge-triggered: a short read drained the socket, and data arriving later raises a new edge. */
    if ((size_t)n < room) return;
  }
}

/* -- Opening connections: at most CONNECT_BURST handshakes at a time, round-robin over ports. -- */

static struct {
  int in_flight, done;
} opening;

static Conn *conn_start(int port) {
  Conn *c = xcalloc(1, sizeof *c);
  c->port = (uint16_t)port;
  c->chunk_left = -1;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("connect failed after %d connections: socket: %s", opening.done, strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int r = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
  if (r < 0 && errno != EINPROGRESS) fail("connect failed after %d connections: connect 127.0.0.1:%d: %s", opening.done, port, strerror(errno));
  c->state = r == 0 ? OPEN : CONNECTING;
  struct epoll_event ev = {.events = r == 0 ? EPOLLIN | EPOLLET : EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
  if (n_all_conns == all_conns_cap) {
    all_conns_cap = all_conns_cap ? all_conns_cap * 2 : 1024;
    all_conns = xrealloc(all_conns, all_conns_cap * sizeof(Conn *));
  }
  all_conns[n_all_conns++] = c;
  if (r == 0) opening.done++;
  else opening.in_flight++;
  return c;
}

static void conn_connected(Conn *c, uint32_t events) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0 && !(events & (EPOLLOUT))) return; /* not yet */
  if (err) fail("connect failed after %d connections: connect 127.0.0.1:%d: %s", opening.done, c->port, strerror(err));
  c->state = OPEN;
  ep_mod(c, EPOLLIN | EPOLLET);
  opening.in_flight--;
  opening.done++;
}

/* -- The event loop. -- */

static void loop_once(int timeout_ms) {
  struct epoll_event evs[512];
  int n = epoll_wait(epfd, evs, 512, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return;
    fail("epoll_wait: %s", strerror(errno));
  }
  for (int i = 0; i < n; i++) {
    Conn *c = evs[i].data.ptr;
    uint32_t e = evs[i].events;
    if (c->state == CLOSED) continue;
    if (c->state == CONNECTING) {
      conn_connected(c, e);
      continue;
    }
    if ((e & EPOLLOUT) && c->out_len) conn_flush(c);
    if (c->state == OPEN && (e & (EPOLLIN | EPOLLHUP | EPOLLERR))) conn_readable(c);
  }
}

/** Handles events until `deadline` (ms, now_ms() clock) or until *flag is set. */
static void run_until(double deadline, const int *flag) {
  for (;;) {
    if (flag && *flag) return;
    double left = deadline - now_ms();
    if (left <= 0) return;
    int t = (int)left;
    if (t < left) t++;
    loop_once(t);
  }
}

static void run_for(double ms) { run_until(now_ms() + ms, NULL); }

/** waitUntil of main.ts: checks `done` every 5 ms (handling events meanwhile) until the deadline. */
static int wait_until(int (*done)(void), double ms) {
  double until = now_ms() + ms;
  while (!done()) {
    if (now_ms() > until) return 0;
    run_for(5);
  }
  return 1;
}

static Conn **open_connections(int count, const int *ports, int n_ports) {
  Conn **conns = xcalloc((size_t)count, sizeof(Conn *));
  opening.in_flight = opening.done = 0;
  int next = 0;
  while (opening.done < count) {
    while (opening.in_flight < CONNECT_BURST && next < count) {
      conns[next] = conn_start(ports[next % n_ports]);
      next++;
    }
    if (opening.done < count) loop_once(1000);
  }
  return conns;
}

/* ------------------------------------------------------------------------------------------------ */
/* Channels, subscribers, publishers. */

/** A subscribe request for one cursor, shared (reference-counted) by every subscriber at that cursor. */
typedef struct Req {
  int refs;
  uint8_t has_lm, has_etag;
  uint32_t lm_len, etag_len, len;
  char *lm, *etag;
  char data[];
} Req;

enum RoundComplete { RC_NONE, RC_LOCKSTEP, RC_FLAG, RC_FIFTY };

typedef struct Channel {
  char *name;
  /** Next sequence number to publish. */
  int64_t next_seq;
  /** Subscribers that have the newest message. */
  int64_t have_newest;
  int64_t subscribers;
  /** When each message's publish request was written. */
  double *published_at;
  size_t published_cap;
  /** The publish request, its 12 body digits last. */
  char *publish_request;
  size_t publish_len;
  char *subscribe_head;
  size_t subscribe_head_len;
  /** The request of the newest cursor seen on the channel. */
  Req *cursor;
  char *eventsource_request;
  size_t eventsource_len;
  char *websocket_request;
  size_t websocket_len;
  int on_round_complete;
  int stall_mark;
} Channel;

typedef struct Sub {
  Conn *conn;
  Channel *channel;
  int64_t last;
  Req *req;
  /** Long-poll: ask again only when told (the latency scenario re-subscribes after a round). */
  uint8_t defer_requests;
  uint8_t in_flight;
  uint8_t open;
} Sub;

static int round_done;
static int not_a_stream;
static int64_t streams_open;

static char *str_printf(size_t *len_out, const char *fmt, ...) {
  char *s;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) fail("out of memory");
  if (len_out) *len_out = (size_t)n;
  return s;
}

static Req *req_build(Channel *ch, const char *lm, size_t lm_len, const char *etag, size_t etag_len) {
  size_t cursor = lm ? sizeof "If-Modified-Since: " - 1 + lm_len + sizeof "\r\nIf-None-Match: " - 1 + (etag ? etag_len : 1) + 2 : 0;
  size_t len = ch->subscribe_head_len + cursor + 2;
  Req *r = xmalloc(sizeof *r + len + lm_len + etag_len);
  r->refs = 1;
  r->len = (uint32_t)len;
  char *p = r->data;
  memcpy(p, ch->subscribe_head, ch->subscribe_head_len);
  p += ch->subscribe_head_len;
  if (lm) {
    p += sprintf(p, "If-Modified-Since: ");
    memcpy(p, lm, lm_len);
    p += lm_len;
    p += sprintf(p, "\r\nIf-None-Match: ");
    if (etag) memcpy(p, etag, etag_len), p += etag_len;
    else *p++ = '0';
    *p++ = '\r', *p++ = '\n';
  }
  *p++ = '\r', *p++ = '\n';
  /* The cursor itself, to recognise it. */
  r->has_lm = lm != NULL;
  r->has_etag = etag != NULL;
  r->lm = p;
  r->lm_len = (uint32_t)(lm ? lm_len : 0);
  if (lm) memcpy(p, lm, lm_len), p += lm_len;
  r->etag = p;
  r->etag_len = (uint32_t)(etag ? etag_len : 0);
  if (etag) memcpy(p, etag, etag_len);
  return r;
}

static void req_unref(Req *r) {
  if (r && --r->refs == 0) free(r);
}

static void channel_init(Channel *ch, int index) {
  memset(ch, 0, sizeof *ch);
  ch->name = str_printf(NULL, "%s-%d", cfg.channel_prefix, index);
  ch->publish_request = str_printf(&ch->publish_len, "POST %s?id=%s HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%0*d",
                                   cfg.publish_path, ch->name, BODY_DIGITS, BODY_DIGITS, 0);
  ch->subscribe_head = str_printf(&ch->subscribe_head_len, "GET %s?id=%s HTTP/1.1\r\nHost: bench\r\n", cfg.subscribe_path, ch->name);
  ch->cursor = req_build(ch, NULL, 0, NULL, 0);
  ch->eventsource_request =
      str_printf(&ch->eventsource_len, "GET %s?id=%s HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n", cfg.eventsource_path, ch->name);
  ch->websocket_request = str_printf(&ch->websocket_len,
                                     "GET %s?id=%s HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                     cfg.websocket_path, ch->name);
}

static Channel *channels_new(int count, int first_index) {
  Channel *chs = xcalloc((size_t)count, sizeof(Channel));
  for (int i = 0; i < count; i++) channel_init(&chs[i], first_index + i);
  return chs;
}

static inline int64_t newest(const Channel *ch) { return ch->next_seq - 1; }

/* -- Publishers: keep-alive connections, one request in flight each, the rest queued. -- */

static struct {
  Conn **idle;
  int n_idle, n_conns;
  Channel **queue;
  size_t head, len, cap;
} pubs;

static void pubs_init(Conn **conns, int n) {
  free(pubs.idle);
  free(pubs.queue);
  memset(&pubs, 0, sizeof pubs);
  pubs.idle = xcalloc((size_t)n, sizeof(Conn *));
  pubs.n_conns = n;
  for (int i = 0; i < n; i++) {
    conns[i]->role = R_PUBLISHER;
    pubs.idle[pubs.n_idle++] = conns[i];
  }
}

static void publisher_send(Conn *c, Channel *ch) {
  int64_t seq = ch->next_seq++;
  if ((size_t)seq >= ch->published_cap) {
    ch->published_cap = ch->published_cap ? ch->published_cap * 2 : 64;
    ch->published_at = xrealloc(ch->published_at, ch->published_cap * sizeof(double));
  }
  char *digits = ch->publish_request + ch->publish_len - BODY_DIGITS;
  int64_t v = seq;
  for (int i = BODY_DIGITS - 1; i >= 0; i--, v /= 10) digits[i] = (char)('0' + v % 10);
  ch->published_at[seq] = now_ms();
  conn_write(c, ch->publish_request, ch->publish_len);
  if (COUNTING) stats.publishes++;
}

/** Publishes the channel's next message. */
static void publish(Channel *ch) {
  ch->have_newest = 0;
  if (pubs.n_idle) {
    publisher_send(pubs.idle[--pubs.n_idle], ch);
    return;
  }
  if (pubs.len == pubs.cap) {
    size_t cap = pubs.cap ? pubs.cap * 2 : 64;
    Channel **q = xcalloc(cap, sizeof(Channel *));
    for (size_t i = 0; i < pubs.len; i++) q[i] = pubs.queue[(pubs.head + i) % pubs.cap];
    free(pubs.queue);
    pubs.queue = q, pubs.cap = cap, pubs.head = 0;
  }
  pubs.queue[(pubs.head + pubs.len++) % pubs.cap] = ch;
}

static void publisher_answer(Conn *c, const Head *h) {
  if (h->status != 201 && h->status != 202) problem("publisher got %d", h->status);
  if (pubs.len) {
    Channel *next = pubs.queue[pubs.head];
    pubs.head = (pubs.head + 1) % pubs.cap;
    pubs.len--;
    publisher_send(c, next);
  } else if (pubs.n_idle < pubs.n_conns) { /* (an unasked-for answer must not make a connection idle twice) */
    pubs.idle[pubs.n_idle++] = c;
  }
}

/* -- Subscribers. -- */

static void channel_round_complete(Channel *ch) {
  switch (ch->on_round_complete) {
    case RC_LOCKSTEP:
      if (stats.phase != DRAIN) publish(ch);
      break;
    case RC_FLAG: round_done = 1; break;
    case RC_FIFTY:
      if (ch->next_seq < 50) publish(ch);
      break;
  }
}

/** A subscriber now has `seq` (checked in order): counts toward the round. */
static inline void channel_got(Channel *ch, int64_t seq, double at, int counted) {
  if (counted) {
    if (seq < ch->next_seq) latency_add(at - ch->published_at[seq]);
    stats.deliveries++;
  }
  if (seq == newest(ch) && ++ch->have_newest == ch->subscribers) channel_round_complete(ch);
}

static void sub_init(Sub *s, Conn *c, Channel *ch, int role) {
  s->conn = c;
  s->channel = ch;
  s->last = -1;
  s->req = ch->cursor;
  s->req->refs++;
  ch->subscribers++;
  c->role = (uint8_t)role;
  c->owner = s;
}

static void longpoll_request(Sub *s) {
  if (s->in_flight) return; /* at most one request in flight on a long-poll connection */
  s->in_flight = 1;
  conn_write(s->conn, s->req->data, s->req->len);
}

static void longpoll_answer(Sub *s, const Head *h, const char *body, size_t len) {
  s->in_flight = 0;
  if (h->status != 200) {
    problem("subscriber got %d", h->status);
    /* 304 is a time-out: ask again with the same cursor. */
    if (h->status == 304 && !stats.stopped) longpoll_request(s);
    return;
  }
  double at = now_ms();
  int64_t seq = parse_seq(body, len);
  int64_t before = s->last;
  s->last = check_seq(before, seq);
  /* The next request carries this answer's Last-Modified/Etag; the channel caches its bytes. */
  Channel *ch = s->channel;
  Req *r = ch->cursor;
  int same = r->has_lm == (h->last_modified != NULL) && r->has_etag == (h->etag != NULL) && r->lm_len == h->last_modified_len &&
             r->etag_len == h->etag_len && memcmp(r->lm, h->last_modified ? h->last_modified : "", r->lm_len) == 0 &&
             memcmp(r->etag, h->etag ? h->etag : "", r->etag_len) == 0;
  if (!same) {
    r = req_build(ch, h->last_modified, h->last_modified_len, h->etag, h->etag_len);
    req_unref(ch->cursor);
    ch->cursor = r;
  }
  if (s->req != r) {
    req_unref(s->req);
    r->refs++;
    s->req = r;
  }
  if (!stats.stopped && !s->defer_requests) longpoll_request(s);
  if (s->last != before) channel_got(ch, s->last, at, COUNTING);
}

static void eventsource_request(Sub *s) { conn_write(s->conn, s->channel->eventsource_request, s->channel->eventsource_len); }

static void eventsource_answer(Sub *s, const Head *h) {
  if (h->status == 200 && h->content_type && h->content_type_len >= 17 && memcmp(h->content_type, "text/event-stream", 17) == 0) {
    if (!s->open) streams_open++;
    s->open = 1;
  } else {
    not_a_stream = 1;
  }
}

/** One event (text before a blank line): its `data:` line is the sequence number; others are skipped. */
static void eventsource_event(Sub *s, const char *e, size_t n, double at) {
  size_t data_at;
  if (n >= 5 && memcmp(e, "data:", 5) == 0) {
    data_at = 0;
  } else {
    const char *d = memmem(e, n, "\ndata:", 6);
    if (!d) return; /* comment or id-only event */
    data_at = (size_t)(d - e) + 1;
  }
  const char *line_end = memchr(e + data_at, '\n', n - data_at);
  size_t end = line_end ? (size_t)(line_end - e) : n;
  int64_t seq = parse_seq(e + data_at + 5, end - data_at - 5);
  int64_t before = s->last;
  s->last = check_seq(before, seq);
  if (s->last != before) channel_got(s->channel, s->last, at, COUNTING);
}

/** Splits text at blank lines ("\n\n"); returns where the unfinished event starts. */
static size_t eventsource_scan(Sub *s, const char *t, size_t n, double at) {
  size_t pos = 0;
  for (;;) {
    const char *end = memmem(t + pos, n - pos, "\n\n", 2);
    if (!end) return pos;
    eventsource_event(s, t + pos, (size_t)(end - (t + pos)), at);
    pos = (size_t)(end - t) + 2;
  }
}

static void websocket_request(Sub *s) { conn_write(s->conn, s->channel->websocket_request, s->channel->websocket_len); }

static void websocket_answer(Sub *s, const Head *h) {
  if (h->status == 101) {
    if (!s->open) streams_open++;
    s->open = 1;
  } else {
    not_a_stream = 1;
  }
}

/**
 * Complete WebSocket frames (RFC 6455, from the server: unmasked): a text or binary frame's payload
 * is the sequence number; pings and pongs are skipped; returns where the unfinished frame starts.
 */
static size_t websocket_scan(Sub *s, const char *t, size_t n, double at) {
  size_t pos = 0;
  while (n - pos >= 2) {
    const uint8_t *b = (const uint8_t *)t + pos;
    size_t head = 2;
    uint64_t payload = b[1] & 0x7f;
    if (payload == 126) {
      if (n - pos < 4) break;
      payload = (uint64_t)b[2] << 8 | b[3];
      head = 4;
    } else if (payload == 127) {
      if (n - pos < 10) break;
      payload = 0;
      for (int i = 0; i < 8; i++) payload = payload << 8 | b[2 + i];
      head = 10;
    }
    if (b[1] & 0x80) head += 4;
    if ((uint64_t)(n - pos - head) < payload || n - pos < head) break;
    uint8_t opcode = b[0] & 0x0f;
    if (opcode == 1 || opcode == 2) {
      int64_t before = s->last;
      s->last = check_seq(before, parse_seq(t + pos + head, (size_t)payload));
      if (s->last != before) channel_got(s->channel, s->last, at, COUNTING);
    } else if (opcode == 8 && !stats.stopped) {
      problem("WebSocket closed by server");
    }
    pos += head + (size_t)payload;
  }
  return pos;
}

/** De-chunked stream bytes of a connection. */
static void stream_data(Conn *c, const char *data, size_t len) {
  if ((c->role != R_EVENTSOURCE && c->role != R_WEBSOCKET) || len == 0) return;
  Sub *s = c->owner;
  double at = now_ms();
  size_t (*scan)(Sub *, const char *, size_t, double) = c->role == R_WEBSOCKET ? websocket_scan : eventsource_scan;
  if (c->ev_len == 0) {
    size_t pos = scan(s, data, len, at);
    if (pos < len) {
      reserve(&c->ev, &c->ev_cap, len - pos);
      memcpy(c->ev, data + pos, len - pos);
      c->ev_len = (uint32_t)(len - pos);
    }
    return;
  }
  reserve(&c->ev, &c->ev_cap, (size_t)c->ev_len + len);
  memcpy(c->ev + c->ev_len, data, len);
  c->ev_len += (uint32_t)len;
  size_t pos = scan(s, c->ev, c->ev_len, at);
  if (pos) {
    memmove(c->ev, c->ev + pos, c->ev_len - pos);
    c->ev_len -= (uint32_t)pos;
  }
}

/* -- Channel-info probe: how many subscribers wait on a channel (publisher endpoint, text/plain). -- */

static struct {
  Conn *conn;
  int outstanding, answered;
  double subscribers; /* NaN when the answer had no count */
} probe;

static void probe_init(Conn *c) {
  memset(&probe, 0, sizeof probe);
  probe.conn = c;
  c->role = R_PROBE;
}

static void probe_answer(const Head *h, const char *body, size_t len) {
  double n = 0;
  if (h->status == 200) {
    n = NAN;
    static const char KEY[] = "active subscribers: ";
    const size_t klen = sizeof KEY - 1;
    const char *p = body, *end = body + len;
    while ((p = memmem(p, (size_t)(end - p), KEY, klen)) != NULL) {
      const char *d = p + klen;
      if (d < end && *d >= '0' && *d <= '9') {
        n = 0;
        while (d < end && *d >= '0' && *d <= '9') n = n * 10 + (*d++ - '0');
        break;
      }
      p++;
    }
  }
  probe.outstanding = 0;
  probe.answered = 1;
  probe.subscribers = n;
}

/** Asks once (or awaits the answer to a question still open); NaN when no answer came by `until`. */
static double probe_subscribers(Channel *ch, double until) {
  if (!probe.outstanding) {
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s?id=%s HTTP/1.1\r\nHost: bench\r\nAccept: text/plain\r\n\r\n", cfg.publish_path, ch->name);
    if (n < 0 || (size_t)n >= sizeof req) fail("channel name too long");
    probe.outstanding = 1;
    conn_write(probe.conn, req, (size_t)n);
  }
  probe.answered = 0;
  run_until(until, &probe.answered);
  return probe.answered ? probe.subscribers : NAN;
}

/** Polls until `count` subscribers wait (1) or the deadline passes (0). */
static int probe_wait_for(Channel *ch, double count, double deadline_ms) {
  double until = now_ms() + deadline_ms;
  while (now_ms() < until) {
    if (probe_subscribers(ch, until) >= count) return 1;
    run_for(2);
  }
  return 0;
}

/* -- Closing and dispatching. -- */

static void conn_closed(Conn *c) {
  if (stats.stopped) return;
  if (c->role == R_LONGPOLL) problem("subscriber connection closed by server");
  else if (c->role == R_EVENTSOURCE) problem("EventSource stream closed by server");
  else if (c->role == R_WEBSOCKET) problem("WebSocket closed by server");
}

static struct {
  char **requests;
  size_t *lens;
  int channels;
  uint64_t next;
} publish_only;

static void publish_only_answer(Conn *c, const Head *h) {
  if (h->status != 202 && h->status != 201) problem("publisher got %d", h->status);
  if (COUNTING) stats.publishes++;
  if (stats.phase != DRAIN) {
    int i = (int)(publish_only.next++ % (uint64_t)publish_only.channels);
    conn_write(c, publish_only.requests[i], publish_only.lens[i]);
  }
}

static void dispatch(Conn *c, const Head *h, const char *body, size_t len) {
  switch (c->role) {
    case R_LONGPOLL: longpoll_answer(c->owner, h, body, len); break;
    case R_EVENTSOURCE: eventsource_answer(c->owner, h); break;
    case R_WEBSOCKET: websocket_answer(c->owner, h); break;
    case R_PUBLISHER: publisher_answer(c, h); break;
    case R_PROBE: probe_answer(h, body, len); break;
    case R_PUBLISH_ONLY: publish_only_answer(c, h); break;
    default: break;
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Results (one JSON line). */

typedef struct {
  int has_value;
  double value;
  const char *unit, *not_applicable;
  Window window;
  int has_latency;
  Summary latency;
  int has_extra;
  double rss_before, rss_parked;
  long parked;
} Result;

typedef struct {
  char *s;
  uint32_t len, cap;
} Str;

static void put(Str *o, const char *s, size_t n) {
  reserve(&o->s, &o->cap, (size_t)o->len + n + 1);
  memcpy(o->s + o->len, s, n);
  o->len += (uint32_t)n;
  o->s[o->len] = 0;
}
static void puts_(Str *o, const char *s) { put(o, s, strlen(s)); }
static void put_int(Str *o, int64_t v) {
  char b[32];
  put(o, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)v));
}

/** A number as JSON.stringify writes it (shortest round-trip digits; null when not finite). */
static void put_num(Str *o, double x) {
  if (!isfinite(x)) {
    puts_(o, "null");
    return;
  }
  if (x == 0) {
    puts_(o, "0");
    return;
  }
  char b[64];
  for (int p = 1; p <= 17; p++) {
    snprintf(b, sizeof b, "%.*e", p - 1, x);
    if (strtod(b, NULL) == x) break;
  }
  char digits[32];
  int k = 0, neg = b[0] == '-';
  const char *p = b + neg;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[k++] = *p;
  int n = atoi(p + 1) + 1; /* the decimal point sits after n digits */
  char out[64];
  int m = 0;
  if (neg) out[m++] = '-';
  if (k <= n && n <= 21) {
    for (int i = 0; i < k; i++) out[m++] = digits[i];
    for (int i = k; i < n; i++) out[m++] = '0';
  } else if (0 < n && n <= 21) {
    for (int i = 0; i < n; i++) out[m++] = digits[i];
    out[m++] = '.';
    for (int i = n; i < k; i++) out[m++] = digits[i];
  } else if (-6 < n && n <= 0) {
    out[m++] = '0', out[m++] = '.';
    for (int i = n; i < 0; i++) out[m++] = '0';
    for (int i = 0; i < k; i++) out[m++] = digits[i];
  } else {
    out[m++] = digits[0];
    if (k > 1) {
      out[m++] = '.';
      for (int i = 1; i < k; i++) out[m++] = digits[i];
    }
    m += snprintf(out + m, sizeof out - (size_t)m, "e%c%d", n - 1 >= 0 ? '+' : '-', n - 1 >= 0 ? n - 1 : 1 - n);
  }
  put(o, out, (size_t)m);
}

static void put_str(Str *o, const char *s) {
  put(o, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char b[8];
    if (c == '"') put(o, "\\\"", 2);
    else if (c == '\\') put(o, "\\\\", 2);
    else if (c == '\n') put(o, "\\n", 2);
    else if (c == '\r') put(o, "\\r", 2);
    else if (c == '\t') put(o, "\\t", 2);
    else if (c == '\b') put(o, "\\b", 2);
    else if (c == '\f') put(o, "\\f", 2);
    else if (c < 0x20) put(o, b, (size_t)snprintf(b, sizeof b, "\\u%04x", c));
    else put(o, (const char *)&c, 1);
  }
  put(o, "\"", 1);
}

static void key(Str *o, const char *k) {
  puts_(o, o->len > 1 ? ",\"" : "\"");
  puts_(o, k);
  puts_(o, "\":");
}

static void print_result(const Result *r) {
  Str o = {0};
  puts_(&o, "{");
  key(&o, "scenario"), put_str(&o, SCENARIO_NAMES[cfg.scenario]);
  if (r->has_value) key(&o, "value"), put_num(&o, r->value);
  key(&o, "unit"), put_str(&o, r->unit);
  if (r->not_applicable) key(&o, "notApplicable"), put_str(&o, r->not_applicable);
  key(&o, "deliveries"), put_int(&o, stats.deliveries);
  key(&o, "publishes"), put_int(&o, stats.publishes);
  key(&o, "elapsedMs"), put_num(&o, js_round(r->window.elapsed_ms));
  key(&o, "loadgenCpu"), put_num(&o, r->window.loadgen_cpu);
  key(&o, "serverCpu"), put_num(&o, r->window.server_cpu);
  key(&o, "auxCpu"), put_num(&o, r->window.aux_cpu);
  key(&o, "otherCpu"), put_num(&o, r->window.other_cpu);
  key(&o, "stealCpu"), put_num(&o, r->window.steal_cpu);
  key(&o, "lost"), put_int(&o, check_counts.lost);
  key(&o, "duplicated"), put_int(&o, check_counts.duplicated);
  key(&o, "reordered"), put_int(&o, check_counts.reordered);
  key(&o, "garbled"), put_int(&o, check_counts.garbled);
  key(&o, "problems"), puts_(&o, "[");
  for (int i = 0; i < problems.n; i++) {
    if (i) puts_(&o, ",");
    char *item = str_printf(NULL, "%s (x%ld)", problems.what[i], problems.count[i]);
    put_str(&o, item);
    free(item);
  }
  puts_(&o, "]");
  if (r->has_latency) {
    key(&o, "latency"), puts_(&o, "{\"count\":"), put_int(&o, (int64_t)r->latency.count);
    puts_(&o, ",\"p50\":"), put_num(&o, r->latency.p50);
    puts_(&o, ",\"p90\":"), put_num(&o, r->latency.p90);
    puts_(&o, ",\"p99\":"), put_num(&o, r->latency.p99);
    puts_(&o, ",\"max\":"), put_num(&o, r->latency.max);
    puts_(&o, "}");
  }
  if (r->has_extra) {
    key(&o, "extra"), puts_(&o, "{\"rssBeforeBytes\":"), put_num(&o, r->rss_before);
    puts_(&o, ",\"rssParkedBytes\":"), put_num(&o, r->rss_parked);
    puts_(&o, ",\"parked\":"), put_int(&o, r->parked);
    puts_(&o, "}");
  }
  puts_(&o, "}\n");
  fwrite(o.s, 1, o.len, stdout);
  fflush(stdout);
}

static void reset_all_connections(void) {
  for (size_t i = 0; i < n_all_conns; i++) conn_reset(all_conns[i]);
}

/** Resets every connection and fills in the figures. */
static Result finish(const Window *w, int has_value, double value, const char *unit, const char *not_applicable) {
  stats.stopped = 1;
  reset_all_connections();
  Result r = {0};
  r.has_value = has_value;
  r.value = has_value ? round2(value) : 0;
  r.unit = unit;
  r.not_applicable = not_applicable;
  r.window = *w;
  if (samples.n > 0 && strcmp(unit, "ms p99") != 0) r.has_latency = latency_summary(&r.latency);
  return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* Scenarios. */

static Sub *subs;
static int n_subs;

static int all_have_newest(void) {
  for (int i = 0; i < n_subs; i++)
    if (subs[i].last != newest(subs[i].channel)) return 0;
  return 1;
}
static int all_open_or_not_a_stream(void) { return not_a_stream || streams_open == n_subs; }
static int all_have_49(void) {
  for (int i = 0; i < n_subs; i++)
    if (subs[i].last != 49) return 0;
  return 1;
}
static int all_started(void) {
  for (int i = 0; i < n_subs; i++)
    if (subs[i].last < 0) return 0;
  return 1;
}
static int all_have_0(void) {
  for (int i = 0; i < n_subs; i++)
    if (subs[i].last != 0) return 0;
  return 1;
}

/**
 * Subscribers still without their channel's newest message 10 s after the last publish: the server
 * never answered them (a lost wake-up), which counts as lost messages.
 */
static void report_stalls(void) {
  static int mark;
  mark++;
  int stalled = 0, channels = 0;
  Sub *example = NULL;
  for (int i = 0; i < n_subs; i++) {
    Sub *s = &subs[i];
    if (s->last >= newest(s->channel)) continue;
    stalled++;
    if (!example) example = s;
    if (s->channel->stall_mark != mark) s->channel->stall_mark = mark, channels++;
    check_counts.lost += newest(s->channel) - s->last;
  }
  if (example)
    problem("drain: %d subscribers on %d channels never got their channel's newest message (e.g. %s: has %lld, newest %lld, %lld/%lld have it)", stalled,
            channels, example->channel->name, (long long)example->last, (long long)newest(example->channel), (long long)example->channel->have_newest,
            (long long)example->channel->subscribers);
  else
    problem("drain: %d subscribers on %d channels never got their channel's newest message", stalled, channels);
}

static void subscribers_new(Conn **conns, int n, Channel *channels, int n_channels, int role) {
  subs = xcalloc((size_t)n, sizeof(Sub));
  n_subs = n;
  for (int i = 0; i < n; i++) sub_init(&subs[i], conns[i], &channels[i % n_channels], role);
}

/**
 * Lockstep fan-out: every channel publishes its next message as soon as all its subscribers have the
 * previous one. Warm-up, then a measured window, then a drain in which nothing new is published.
 */
enum Subscribers { LONGPOLL, EVENTSOURCE, WEBSOCKET };

static Result fanout(int n_channels, int per_channel, int publisher_conns, int mode) {
  Channel *channels = channels_new(n_channels, 0);
  int total = n_channels * per_channel;
  Conn **sub_conns = open_connections(total, cfg.subscribe_ports, cfg.n_subscribe_ports);
  Conn **pub_conns = open_connections(publisher_conns, &cfg.port, 1);
  pubs_init(pub_conns, publisher_conns);
  subscribers_new(sub_conns, total, channels, n_channels, mode == EVENTSOURCE ? R_EVENTSOURCE : mode == WEBSOCKET ? R_WEBSOCKET : R_LONGPOLL);
  for (int i = 0; i < total; i++) {
    if (mode == EVENTSOURCE) eventsource_request(&subs[i]);
    else if (mode == WEBSOCKET) websocket_request(&subs[i]);
    else longpoll_request(&subs[i]);
  }
  if (mode != LONGPOLL) {
    /* Nchan answers the headers at once; a relay that waits for the first message is still measured. */
    wait_until(all_open_or_not_a_stream, 2000);
  } else {
    run_for(200);
  }
  for (int i = 0; i < n_channels; i++) {
    channels[i].on_round_complete = RC_LOCKSTEP;
    publish(&channels[i]);
  }
  /* The warm-up starts once every subscriber has its first message: a server that is slow to take
     10,000 subscribers in (several processes on a Redis store) is measured running, not starting. */
  if (!wait_until(all_started, 30000)) problem("not every subscriber got its first message within 30 s");
  Window w = {0};
  run_for((double)cfg.warmup_ms);
  if (not_a_stream)
    return finish(&w, 0, 0, "deliveries/s",
                  mode == WEBSOCKET ? "no WebSocket: the upgrade was not answered 101" : "no EventSource stream: Accept: text/event-stream was answered as long-poll");
  stats.phase = MEASURE;
  window_start(&w);
  run_for((double)cfg.duration_ms);
  stats.phase = DRAIN;
  window_stop(&w);
  if (!wait_until(all_have_newest, 10000)) report_stalls();
  return finish(&w, 1, (double)stats.deliveries * 1000 / w.elapsed_ms, "deliveries/s", NULL);
}

/** One round of the latency scenario: all parked, one publish, everybody has it, all re-subscribe. */
static int latency_round(Channel *ch, int measured) {
  if (!probe_wait_for(ch, (double)cfg.many, 10000)) problem("not every subscriber was parked before a publish");
  stats.phase = measured ? MEASURE : WARMUP;
  round_done = 0;
  publish(ch);
  run_until(now_ms() + 10000, &round_done);
  int ok = round_done;
  stats.phase = DRAIN;
  if (!ok) problem("a round did not complete within 10 s");
  for (int i = 0; i < n_subs; i++) longpoll_request(&subs[i]);
  return ok;
}

/** One channel, many long-poll subscribers: before each publish, all of them wait on the server. */
static Result latency(void) {
  int n = (int)cfg.many;
  Channel *ch = channels_new(1, 0);
  Conn **sub_conns = open_connections(n, cfg.subscribe_ports, cfg.n_subscribe_ports);
  Conn **conns = open_connections(2, &cfg.port, 1);
  pubs_init(conns, 1);
  probe_init(conns[1]);
  subscribers_new(sub_conns, n, ch, 1, R_LONGPOLL);
  for (int i = 0; i < n; i++) {
    subs[i].defer_requests = 1;
    longpoll_request(&subs[i]);
  }
  ch->on_round_complete = RC_FLAG;
  for (int i = 0; i < 2; i++) latency_round(ch, 0);
  Window w = {0};
  window_start(&w);
  for (long i = 0; i < cfg.rounds; i++)
    if (!latency_round(ch, 1)) break;
  window_stop(&w);
  for (int i = 0; i < n; i++)
    if (subs[i].last < newest(ch)) {
      report_stalls();
      break;
    }
  Summary summary;
  int has = latency_summary(&summary);
  Result r = finish(&w, has, has ? summary.p99 : 0, "ms p99", NULL);
  r.has_latency = has;
  r.latency = summary;
  return r;
}

/** Publishes as fast as `connections` keep-alive connections allow, round-robin over channels, nobody listening. */
static Result publish_only_run(int n_channels, int connections) {
  publish_only.channels = n_channels;
  publish_only.requests = xcalloc((size_t)n_channels, sizeof(char *));
  publish_only.lens = xcalloc((size_t)n_channels, sizeof(size_t));
  Channel *channels = channels_new(n_channels, 0);
  for (int i = 0; i < n_channels; i++) {
    publish_only.requests[i] = channels[i].publish_request; /* its body is message 0 */
    publish_only.lens[i] = channels[i].publish_len;
  }
  Conn **conns = open_connections(connections, &cfg.port, 1);
  Window w = {0};
  for (int i = 0; i < connections; i++) {
    conns[i]->role = R_PUBLISH_ONLY;
    int k = (int)(publish_only.next++ % (uint64_t)n_channels);
    conn_write(conns[i], publish_only.requests[k], publish_only.lens[k]);
  }
  run_for((double)cfg.warmup_ms);
  stats.phase = MEASURE;
  window_start(&w);
  run_for((double)cfg.duration_ms);
  window_stop(&w);
  stats.phase = DRAIN;
  return finish(&w, 1, (double)stats.publishes * 1000 / w.elapsed_ms, "publishes/s", NULL);
}

/** Warms the server's code paths on another channel: 100 subscribers, 50 lockstep messages. */
static void fanout_warmup(void) {
  Channel *ch = channels_new(1, 0);
  Conn **sub_conns = open_connections(100, cfg.subscribe_ports, cfg.n_subscribe_ports);
  Conn **pub_conns = open_connections(1, &cfg.port, 1);
  pubs_init(pub_conns, 1);
  subscribers_new(sub_conns, 100, ch, 1, R_LONGPOLL);
  for (int i = 0; i < 100; i++) longpoll_request(&subs[i]);
  run_for(100);
  ch->on_round_complete = RC_FIFTY;
  publish(ch);
  wait_until(all_have_49, 10000);
  stats.stopped = 1;
  for (int i = 0; i < 100; i++) conn_reset(sub_conns[i]);
  conn_reset(pub_conns[0]);
  stats.stopped = 0;
  /* Warm-up deliveries are not part of the figures. */
  stats.deliveries = 0;
}

/** RSS growth of the server per parked long-poll subscriber (one channel). */
static Result memory(void) {
  int n = (int)cfg.many;
  fanout_warmup();
  run_for(500);
  double before = server_rss_bytes();
  Channel *ch = channels_new(1, 1);
  Conn **sub_conns = open_connections(n, cfg.subscribe_ports, cfg.n_subscribe_ports);
  Conn **conns = open_connections(2, &cfg.port, 1);
  pubs_init(conns, 1);
  probe_init(conns[1]);
  subscribers_new(sub_conns, n, ch, 1, R_LONGPOLL);
  for (int i = 0; i < n; i++) longpoll_request(&subs[i]);
  if (!probe_wait_for(ch, n, 20000)) problem("not every subscriber got parked");
  run_for(1000);
  double after = server_rss_bytes();
  /* Then release them all and check that each got the message. */
  Window w = {0};
  window_start(&w);
  publish(ch);
  if (!wait_until(all_have_0, 10000)) report_stalls();
  window_stop(&w);
  Result r = finish(&w, 1, js_round((after - before) / n), "bytes/subscriber", NULL);
  r.has_extra = 1;
  r.rss_before = before;
  r.rss_parked = after;
  r.parked = n;
  return r;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  long hz = sysconf(_SC_CLK_TCK);
  tick_ms = 1000.0 / (double)(hz > 0 ? hz : 100);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1: %s", strerror(errno));
  reserve(&rbuf, &rbuf_cap, READ_BUFFER_SIZE);

  Result r;
  switch (cfg.scenario) {
    case S_FANOUT: r = fanout(1, 1000, 1, LONGPOLL); break;
    case S_CHANNELS: r = fanout(1000, 10, 16, LONGPOLL); break;
    case S_LATENCY: r = latency(); break;
    case S_PUBLISH: r = publish_only_run(1000, 8); break;
    case S_EVENTSOURCE: r = fanout(1, 1000, 1, EVENTSOURCE); break;
    case S_WEBSOCKET: r = fanout(1, 1000, 1, WEBSOCKET); break;
    default: r = memory(); break;
  }
  print_result(&r);
  return 0;
}
