/* A FastCGI responder written against libfcgi's fcgiapp API (Debian's libfcgi-dev), for the
 * conformance suite. It accepts on the listening socket passed as fd 0 (FCGI_LISTENSOCK_FILENO,
 * as a web server would spawn it) and serves the contract of test/conformance/README.md:
 * CONF_ACTION selects echo (default), status or stderr. Several threads accept, so several
 * connections are served at once; each connection is served by one thread, one request at a
 * time, as libfcgi requires. GET_VALUES, keep-alive and CANT_MPX_CONN are libfcgi's own. */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { threads = 8 };

static const char* param(FCGX_Request* r, const char* name) {
    const char* v = FCGX_GetParam(name, r->envp);
    return v ? v : "";
}

/* Count, total length and byte sum of every param whose name starts with CONF_BIG_: lets the
 * suite check that large params arrived whole without echoing megabytes back. */
static void big_params(FCGX_Request* r, unsigned long* count, unsigned long* total,
                       unsigned long* sum) {
    *count = *total = *sum = 0;
    for (char** e = r->envp; e && *e; ++e) {
        if (strncmp(*e, "CONF_BIG_", 9) != 0)
            continue;
        const char* eq = strchr(*e, '=');
        if (!eq)
            continue;
        ++*count;
        for (const unsigned char* p = (const unsigned char*)eq + 1; *p; ++p) {
            ++*total;
            *sum = (*sum + *p) & 0xffffffffUL;
        }
    }
}

static void echo(FCGX_Request* r) {
    unsigned long count, total, sum;
    big_params(r, &count, &total, &sum);
    FCGX_FPrintF(r->out,
                 "Content-Type: text/plain\r\nX-Conf-Peer: libfcgi\r\n\r\n"
                 "method=%s\nquery=%s\nvalue=%s\nheader=%s\nbig=%lu:%lu:%lu\nbody=",
                 param(r, "REQUEST_METHOD"), param(r, "QUERY_STRING"), param(r, "CONF_VALUE"),
                 param(r, "HTTP_X_CONF"), count, total, sum);
    char buf[65536];
    int n;
    while ((n = FCGX_GetStr(buf, sizeof buf, r->in)) > 0)
        FCGX_PutStr(buf, n, r->out);
}

static void serve(FCGX_Request* r) {
    const char* action = param(r, "CONF_ACTION");
    if (strcmp(action, "status") == 0) {
        FCGX_FPrintF(r->out,
                     "Status: %s Custom\r\nContent-Type: text/plain\r\nX-Conf-Multi: a\r\n"
                     "X-Conf-Multi: b\r\n\r\nstatus",
                     param(r, "CONF_STATUS"));
    } else if (strcmp(action, "stderr") == 0) {
        FCGX_PutS("conformance stderr", r->err);
        FCGX_PutS("Content-Type: text/plain\r\n\r\nstderr", r->out);
    } else if (strcmp(action, "role") == 0) {
        FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nrole=%s", param(r, "FCGI_ROLE"));
    } else {
        echo(r);
    }
}

static void* worker(void* arg) {
    (void)arg;
    FCGX_Request r;
    FCGX_InitRequest(&r, 0, 0);
    for (;;) {
        /* No lock around accept, unlike libfcgi's threaded example: a thread holding it while it
         * waits for the next request of a kept-alive connection would starve the others, and
         * holding it in accept() would keep that thread from its kept-alive connection. Linux
         * needs no accept() serialisation. */
        if (FCGX_Accept_r(&r) < 0)
            break;
        serve(&r);
        FCGX_Finish_r(&r);
    }
    return NULL;
}

int main(void) {
    if (FCGX_Init() != 0 || FCGX_IsCGI()) {
        fprintf(stderr, "libfcgi_responder: fd 0 must be a listening socket\n");
        return 2;
    }
    /* FCGX_Init turns SIGTERM into "stop after the current request", which never comes for an
     * idle server; the suite stops its peers with SIGTERM, so make it end the process again. */
    signal(SIGTERM, SIG_DFL);
    pthread_t t[threads];
    for (int i = 0; i < threads; ++i)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; ++i)
        pthread_join(t[i], NULL);
    return 0;
}
