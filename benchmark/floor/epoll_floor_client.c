/* The syscall floor for a FastCGI client: the least CPU a client can spend per request on
 * kept-alive connections, to compare connection_cpu_benchmark with.
 *
 * Usage: epoll_floor_client [-c conns] [-n requests] [-t seconds] [-w warmup] [--pingpong]
 *                           [--spin-ns N] [--depth N] [--dump] socket_path
 *
 * Default mode: `conns` non-blocking connections under one epoll loop (level-triggered); each
 * does one write of a pre-encoded request, reads until END_REQUEST, and repeats. --pingpong: one
 * blocking connection, write then read, no epoll. The request is encoded once, byte for byte what
 * fcgi::connection sends for the benchmark's request (run_connection_cpu.sh checks this), so the
 * only difference left is the client's own work. --dump writes those bytes to stdout and exits.
 * --spin-ns N (epoll mode): busy-waits N ns between a response and the next request on its
 * connection, modelling a client that does N ns more work per response (what that slower
 * turnaround costs the server, see benchmark/macro/fpm_cost.sh). --depth N (epoll mode): keeps N
 * requests written per connection, the next ones sent before the first is answered (pipelining;
 * php-fpm serves them one after another), to measure what that saves the server.
 *
 * Output: one line of key=value pairs, the same as connection_cpu_benchmark's. CPU is the
 * process's own user+sys time (getrusage RUSAGE_SELF) over the measured phase, which starts
 * after `warmup` requests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
    fcgi_begin_request = 1,
    fcgi_end_request = 3,
    fcgi_params = 4,
    fcgi_stdin = 5,
    max_conns = 1024,
};

/* What cgi_params derives for {script="/srv/hello.php", 4 headers}: 16 CGI defaults + 4 HTTP_*. */
static const char* const params[][2] = {
    {"GATEWAY_INTERFACE", "CGI/1.1"},
    {"SERVER_PROTOCOL", "HTTP/1.1"},
    {"SERVER_SOFTWARE", "asio-fcgi"},
    {"REQUEST_METHOD", "GET"},
    {"SCRIPT_FILENAME", "/srv/hello.php"},
    {"SCRIPT_NAME", "/hello.php"},
    {"DOCUMENT_ROOT", "/srv"},
    {"REQUEST_URI", "/hello.php"},
    {"QUERY_STRING", ""},
    {"CONTENT_LENGTH", "0"},
    {"CONTENT_TYPE", ""},
    {"REMOTE_ADDR", "127.0.0.1"},
    {"REMOTE_PORT", "0"},
    {"SERVER_ADDR", "127.0.0.1"},
    {"SERVER_NAME", "localhost"},
    {"SERVER_PORT", "80"},
    {"HTTP_HOST", "localhost"},
    {"HTTP_USER_AGENT", "asio-fcgi-bench"},
    {"HTTP_ACCEPT", "*/*"},
    {"HTTP_ACCEPT_ENCODING", "gzip"},
};

static unsigned char request[4096];
static size_t request_size;

static void die(const char* what) {
    perror(what);
    exit(1);
}

static unsigned char* put_header(unsigned char* p, int type, size_t clen, size_t pad) {
    p[0] = 1;
    p[1] = (unsigned char)type;
    p[2] = 0;
    p[3] = 1; /* request ID 1: the first slot, as the library uses */
    p[4] = (unsigned char)(clen >> 8);
    p[5] = (unsigned char)clen;
    p[6] = (unsigned char)pad;
    p[7] = 0;
    return p + 8;
}

static unsigned char* put_length(unsigned char* p, size_t n) {
    if (n < 128) {
        *p++ = (unsigned char)n;
        return p;
    }
    *p++ = (unsigned char)((n >> 24) | 0x80u);
    *p++ = (unsigned char)(n >> 16);
    *p++ = (unsigned char)(n >> 8);
    *p++ = (unsigned char)n;
    return p;
}

/* BEGIN_REQUEST(RESPONDER, KEEP_CONN), one PARAMS record padded to 8, empty PARAMS, empty STDIN. */
static void encode_request(void) {
    unsigned char* p = put_header(request, fcgi_begin_request, 8, 0);
    memset(p, 0, 8);
    p[1] = 1; /* RESPONDER */
    p[2] = 1; /* FCGI_KEEP_CONN */
    p += 8;
    unsigned char* params_header = p;
    unsigned char* q = p + 8;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; ++i) {
        size_t nl = strlen(params[i][0]), vl = strlen(params[i][1]);
        q = put_length(q, nl);
        q = put_length(q, vl);
        memcpy(q, params[i][0], nl);
        q += nl;
        memcpy(q, params[i][1], vl);
        q += vl;
    }
    size_t clen = (size_t)(q - (params_header + 8));
    size_t pad = (8 - (clen & 7u)) & 7u;
    put_header(params_header, fcgi_params, clen, pad);
    memset(q, 0, pad);
    p = q + pad;
    p = put_header(p, fcgi_params, 0, 0);
    p = put_header(p, fcgi_stdin, 0, 0);
    request_size = (size_t)(p - request);
}

/* Response parser state of one connection: headers gathered, content and padding skipped. */
struct conn {
    int fd;
    unsigned char hdr[8];
    size_t hdr_have;
    size_t skip;
    int is_end;      /* the record being skipped is END_REQUEST */
    int outstanding; /* requests written and not answered */
};

/* Consumes buf[0..n); returns how many END_REQUESTs it ended (0: more is needed), or -1 when
 * the stream is out of step: a bad header, more END_REQUESTs than requests outstanding, or bytes
 * after the END_REQUEST of the last one. */
static int parse(struct conn* c, const unsigned char* buf, size_t n) {
    size_t i = 0;
    int ends = 0;
    while (i < n) {
        if (c->skip > 0) {
            size_t take = n - i < c->skip ? n - i : c->skip;
            i += take;
            c->skip -= take;
            if (c->skip == 0 && c->is_end) {
                c->is_end = 0;
                if (++ends > c->outstanding)
                    return -1;
                if (ends == c->outstanding && i != n)
                    return -1;
            }
            continue;
        }
        c->hdr[c->hdr_have++] = buf[i++];
        if (c->hdr_have < 8)
            continue;
        c->hdr_have = 0;
        if (c->hdr[0] != 1)
            return -1;
        c->skip = ((size_t)c->hdr[4] << 8 | c->hdr[5]) + c->hdr[6];
        c->is_end = c->hdr[1] == fcgi_end_request;
        if (c->skip == 0 && c->is_end)
            return -1; /* END_REQUEST always has an 8-byte body */
    }
    c->outstanding -= ends;
    return ends;
}

static int connect_unix(const char* path, int nonblocking) {
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        fprintf(stderr, "socket path too long: %s\n", path);
        exit(2);
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr*)&sun, sizeof sun) < 0)
        die("connect");
    /* Set after connect, so a full listen backlog makes connect wait rather than fail. */
    if (nonblocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl O_NONBLOCK");
    return fd;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(double* user, double* sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    return *user + *sys;
}

/* Writes the whole request: one write() in practice, in both modes. */
static void send_request(struct conn* c) {
    size_t off = 0;
    while (off < request_size) {
        ssize_t w = write(c->fd, request + off, request_size - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* At most 64 requests of ~500 bytes are out per connection (--depth): the socket
             * buffer takes them at once; EAGAIN here would mean the responder stopped reading. */
            die("write");
        }
        off += (size_t)w;
    }
    ++c->outstanding;
}

/* Measured-phase bookkeeping shared by both modes. */
struct run {
    long target;  /* requests to complete in the measured phase */
    long warmup;  /* requests before measuring */
    double max_s; /* time bound of the measured phase */
    long started; /* requests written */
    long done;    /* requests answered */
    int measuring;
    long started0, done0; /* counters when measuring began */
    double t0, u0, s0;
    long spin_ns; /* busy-wait before each next request (--spin-ns) */
    int depth;    /* requests written per connection (--depth) */
};

/* Burns `ns` nanoseconds of CPU, as a client's own work between response and request would. */
static void spin(long ns) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ns);
}

static void begin_measuring(struct run* r) {
    r->measuring = 1;
    r->started0 = r->started;
    r->done0 = r->done;
    r->t0 = now_s();
    cpu_s(&r->u0, &r->s0);
}

/* True when no further request should start. Reads the clock every 256 requests only. */
static int should_stop(struct run* r) {
    if (!r->measuring)
        return r->started >= r->warmup;
    long measured = r->started - r->started0;
    if (measured >= r->target)
        return 1;
    if ((measured & 255) == 0 && now_s() - r->t0 >= r->max_s) {
        r->target = measured; /* stop starting; requests in flight still finish */
        return 1;
    }
    return 0;
}

static void report(const char* mode, int conns, struct run* r) {
    double u1, s1;
    cpu_s(&u1, &s1);
    double wall = now_s() - r->t0;
    long n = r->done - r->done0;
    double user = u1 - r->u0, sys = s1 - r->s0;
    printf(
        "mode=%s conns=%d requests=%ld wall_s=%.3f req_per_s=%.0f cpu_us_per_req=%.3f "
        "user_us_per_req=%.3f sys_us_per_req=%.3f allocs_per_req=0\n",
        mode, conns, n, wall, (double)n / wall, (user + sys) * 1e6 / (double)n,
        user * 1e6 / (double)n, sys * 1e6 / (double)n);
}

static void read_response_blocking(struct conn* c) {
    unsigned char buf[4096];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "responder closed the connection\n");
            exit(1);
        }
        int p = parse(c, buf, (size_t)n);
        if (p < 0) {
            fprintf(stderr, "response out of step\n");
            exit(1);
        }
        if (p == 1)
            return;
    }
}

static void run_pingpong(const char* path, struct run* r) {
    struct conn c;
    memset(&c, 0, sizeof c);
    c.fd = connect_unix(path, 0);
    for (;;) {
        if (!r->measuring && should_stop(r))
            begin_measuring(r); /* warmup over */
        if (r->measuring && should_stop(r))
            break;
        send_request(&c);
        ++r->started;
        read_response_blocking(&c);
        ++r->done;
    }
    report("floor-pingpong", 1, r);
    close(c.fd);
}

static void run_epoll(const char* path, int nconns, struct run* r) {
    static struct conn conns[max_conns];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < nconns; ++i) {
        conns[i].fd = connect_unix(path, 1);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
            die("epoll_ctl");
    }
    unsigned char buf[4096];
    struct epoll_event events[64];
    int active = 0;
    /* Two phases, warmup then measured: each starts every connection and ends when all drained. */
    for (int phase = r->warmup > 0 ? 0 : 1; phase < 2; ++phase) {
        if (phase == 1)
            begin_measuring(r);
        for (int d = 0; d < r->depth; ++d) {
            for (int i = 0; i < nconns; ++i) {
                send_request(&conns[i]);
                ++r->started;
                ++active;
            }
        }
        while (active > 0) {
            int k = epoll_wait(ep, events, 64, -1);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                die("epoll_wait");
            }
            for (int e = 0; e < k; ++e) {
                struct conn* c = events[e].data.ptr;
                ssize_t n = read(c->fd, buf, sizeof buf);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (n <= 0) {
                    fprintf(stderr, "responder closed the connection\n");
                    exit(1);
                }
                int p = parse(c, buf, (size_t)n);
                if (p < 0) {
                    fprintf(stderr, "response out of step\n");
                    exit(1);
                }
                for (int q = 0; q < p; ++q) {
                    ++r->done;
                    --active;
                    if (should_stop(r))
                        continue;
                    if (r->spin_ns > 0)
                        spin(r->spin_ns);
                    send_request(c);
                    ++r->started;
                    ++active;
                }
            }
        }
    }
    report("floor", nconns, r);
    for (int i = 0; i < nconns; ++i)
        close(conns[i].fd);
    close(ep);
}

int main(int argc, char** argv) {
    int nconns = 4;
    int pingpong = 0;
    int dump = 0;
    struct run r;
    memset(&r, 0, sizeof r);
    r.target = 200000;
    r.max_s = 5.0;
    r.warmup = 1000;
    r.depth = 1;
    const char* path = NULL;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        if (!strcmp(a, "--pingpong"))
            pingpong = 1;
        else if (!strcmp(a, "--dump"))
            dump = 1;
        else if (!strcmp(a, "-c") && i + 1 < argc)
            nconns = atoi(argv[++i]);
        else if (!strcmp(a, "-n") && i + 1 < argc)
            r.target = atol(argv[++i]);
        else if (!strcmp(a, "-t") && i + 1 < argc)
            r.max_s = atof(argv[++i]);
        else if (!strcmp(a, "-w") && i + 1 < argc)
            r.warmup = atol(argv[++i]);
        else if (!strcmp(a, "--spin-ns") && i + 1 < argc)
            r.spin_ns = atol(argv[++i]);
        else if (!strcmp(a, "--depth") && i + 1 < argc)
            r.depth = atoi(argv[++i]);
        else if (a[0] != '-' && !path)
            path = a;
        else {
            fprintf(stderr,
                    "usage: %s [-c conns] [-n requests] [-t seconds] [-w warmup] [--pingpong] "
                    "[--spin-ns N] [--depth N] [--dump] socket_path\n",
                    argv[0]);
            return 2;
        }
    }
    encode_request();
    if (dump) {
        fwrite(request, 1, request_size, stdout);
        return 0;
    }
    /* --pingpong reads one answer per request: it has no use for more than one out. */
    if (!path || nconns < 1 || nconns > max_conns || r.target < 1 || r.warmup < 0 || r.depth < 1 ||
        r.depth > 64 || (pingpong && r.depth > 1)) {
        fprintf(stderr, "usage: %s [options] socket_path (see the source's header)\n", argv[0]);
        return 2;
    }
    if (pingpong)
        run_pingpong(path, &r);
    else
        run_epoll(path, nconns, &r);
    return 0;
}
