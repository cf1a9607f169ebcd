/* A FastCGI responder that does nothing but answer: the far end of the connection CPU benchmark.
 *
 * Usage: trivial_responder [-w workers] [-p tcp_port] [-d dump_file] socket_path
 *
 * Listens on the unix socket `socket_path` (and on 127.0.0.1:tcp_port with -p), forks `workers`
 * processes that each serve one connection at a time, as php-fpm does. Per connection it reads
 * records until the empty STDIN record of a request, then answers with one STDOUT record and
 * END_REQUEST in a single write. Prints its pid on stdout; SIGTERM stops it and its workers.
 * With -d, the bytes of the first request received are written to dump_file, so a script can
 * check that two clients send the same request.
 *
 * Kept minimal on purpose: its CPU is not what is measured, but it shares the machine with the
 * client, so it must not do more than a real server's cheapest path. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

enum { fcgi_end_request = 3, fcgi_stdin = 5, fcgi_stdout = 6, max_workers = 256 };

static const char body[] = "Content-type: text/plain\r\n\r\nhello\n";
/* serve() patches END_REQUEST's request ID at offset 48: the STDOUT record must be 48 bytes. */
_Static_assert(8 + sizeof body - 1 + ((8 - ((sizeof body - 1) & 7u)) & 7u) == 48, "reply layout");

/* STDOUT record + END_REQUEST, built once; the request ID bytes are patched per request. */
static unsigned char reply[8 + 40 + 16];
static size_t reply_size;

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void die(const char* what) {
    perror(what);
    exit(1);
}

static void build_reply(void) {
    size_t clen = sizeof body - 1;
    size_t pad = (8 - (clen & 7u)) & 7u;
    unsigned char* p = reply;
    memset(reply, 0, sizeof reply);
    p[0] = 1;
    p[1] = fcgi_stdout;
    p[4] = (unsigned char)(clen >> 8);
    p[5] = (unsigned char)clen;
    p[6] = (unsigned char)pad;
    memcpy(p + 8, body, clen);
    p += 8 + clen + pad;
    p[0] = 1;
    p[1] = fcgi_end_request;
    p[5] = 8; /* appStatus 0, REQUEST_COMPLETE */
    p += 16;
    reply_size = (size_t)(p - reply);
}

static int write_all(int fd, const unsigned char* p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Parser state of one connection. Records are parsed as a stream (header bytes gathered,
 * content and padding skipped), so a request may arrive split anywhere and records of any size
 * need no buffer. */
struct conn {
    unsigned char hdr[8];
    size_t hdr_have;
    size_t skip;      /* content + padding of the current record still to skip */
    size_t seen;      /* content bytes of the current record already skipped */
    int ends_request; /* the current record is an empty STDIN */
    int keep_conn;    /* FCGI_KEEP_CONN of the last BEGIN_REQUEST */
};

/* Advances over buf[*pos..n). Returns 1 when a request ended at *pos (its empty STDIN record
 * and padding consumed), 0 when the bytes ran out, -1 on a record that is not FastCGI. */
static int parse(struct conn* c, const unsigned char* buf, size_t n, size_t* pos) {
    while (*pos < n) {
        if (c->skip > 0) {
            size_t take = n - *pos < c->skip ? n - *pos : c->skip;
            /* BEGIN_REQUEST body: role (2 bytes), then flags. */
            if (c->hdr[1] == 1 && c->seen <= 2 && 2 < c->seen + take)
                c->keep_conn = buf[*pos + (2 - c->seen)] & 1;
            *pos += take;
            c->seen += take;
            c->skip -= take;
            if (c->skip == 0 && c->ends_request)
                return 1;
            continue;
        }
        c->hdr[c->hdr_have++] = buf[(*pos)++];
        if (c->hdr_have < 8)
            continue;
        c->hdr_have = 0;
        if (c->hdr[0] != 1)
            return -1;
        size_t clen = (size_t)c->hdr[4] << 8 | c->hdr[5];
        c->skip = clen + c->hdr[6];
        c->seen = 0;
        c->ends_request = c->hdr[1] == fcgi_stdin && clen == 0;
        if (c->skip == 0 && c->ends_request)
            return 1;
    }
    return 0;
}

/* The first request a worker completes goes to the dump file when one was asked for; O_EXCL
 * makes the first worker to get there the only writer. */
static const char* dump_path;
static unsigned char dump_buf[1 << 16];
static size_t dump_have;
static int dump_done;

static void dump_bytes(const unsigned char* p, size_t n) {
    if (!dump_path || dump_done)
        return;
    if (n > sizeof dump_buf - dump_have)
        n = sizeof dump_buf - dump_have;
    memcpy(dump_buf + dump_have, p, n);
    dump_have += n;
}

static void dump_finish(void) {
    if (!dump_path || dump_done)
        return;
    dump_done = 1;
    int fd = open(dump_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)write_all(fd, dump_buf, dump_have);
    close(fd);
}

/* Serves one connection until EOF, an error, or a request without FCGI_KEEP_CONN. */
static void serve(int fd) {
    unsigned char buf[16384];
    struct conn c;
    memset(&c, 0, sizeof c);
    c.keep_conn = 1;
    dump_have = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        size_t pos = 0;
        for (;;) {
            size_t from = pos;
            int r = parse(&c, buf, (size_t)n, &pos);
            dump_bytes(buf + from, pos - from);
            if (r < 0)
                return; /* not FastCGI: drop the connection, as a server would */
            if (r == 0)
                break;
            dump_finish();
            reply[2] = reply[48 + 2] = c.hdr[2]; /* echo the request ID */
            reply[3] = reply[48 + 3] = c.hdr[3];
            if (write_all(fd, reply, reply_size) < 0 || !c.keep_conn)
                return;
        }
    }
}

static void worker(int unix_fd, int tcp_fd) {
    struct pollfd pfd[2] = {{unix_fd, POLLIN, 0}, {tcp_fd, POLLIN, 0}};
    nfds_t nfds = tcp_fd >= 0 ? 2 : 1;
    signal(SIGTERM, SIG_DFL);
    for (;;) {
        if (poll(pfd, nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (nfds_t k = 0; k < nfds; ++k) {
            if (!(pfd[k].revents & POLLIN))
                continue;
            /* Listeners are non-blocking: another worker may have taken the connection. */
            int c = accept4(pfd[k].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            if (k == 1) {
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            serve(c);
            close(c);
        }
    }
}

int main(int argc, char** argv) {
    int workers = 4;
    int port = 0;
    int opt;
    while ((opt = getopt(argc, argv, "w:p:d:")) != -1) {
        switch (opt) {
            case 'w':
                workers = atoi(optarg);
                break;
            case 'p':
                port = atoi(optarg);
                break;
            case 'd':
                dump_path = optarg;
                break;
            default:
                fprintf(stderr, "usage: %s [-w workers] [-p tcp_port] [-d dump_file] socket_path\n",
                        argv[0]);
                return 2;
        }
    }
    if (optind != argc - 1 || workers < 1 || workers > max_workers) {
        fprintf(stderr, "usage: %s [-w workers 1..%d] [-p tcp_port] [-d dump_file] socket_path\n",
                argv[0], max_workers);
        return 2;
    }
    const char* path = argv[optind];
    build_reply();

    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        fprintf(stderr, "socket path too long: %s\n", path);
        return 2;
    }
    strcpy(sun.sun_path, path);
    int unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (unix_fd < 0)
        die("socket");
    unlink(path);
    if (bind(unix_fd, (struct sockaddr*)&sun, sizeof sun) < 0)
        die("bind unix socket");
    if (listen(unix_fd, 512) < 0)
        die("listen");

    int tcp_fd = -1;
    if (port > 0) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (tcp_fd < 0)
            die("socket");
        int one = 1;
        setsockopt(tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(tcp_fd, (struct sockaddr*)&sin, sizeof sin) < 0)
            die("bind 127.0.0.1");
        if (listen(tcp_fd, 512) < 0)
            die("listen");
    }

    /* Handler installed before forking so a SIGTERM right after the pid is printed is not lost. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    pid_t children[max_workers];
    for (int k = 0; k < workers; ++k) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            worker(unix_fd, tcp_fd);
        children[k] = pid;
    }
    printf("%ld\n", (long)getpid());
    fflush(stdout);

    while (!stop_requested)
        pause();
    for (int k = 0; k < workers; ++k)
        kill(children[k], SIGTERM);
    for (int k = 0; k < workers; ++k)
        waitpid(children[k], NULL, 0);
    unlink(path);
    return 0;
}
