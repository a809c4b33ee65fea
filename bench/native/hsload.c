/* hsload: the handshake load of the `stratum` bench, in C so that the load costs little of
 * the CPU the server under test shares with it (the Node client spent ~150 us of CPU per
 * handshake, about as much as the server itself). Linux only (epoll).
 *
 *   hsload <port> <concurrency> <warmup-seconds> <seconds> <address>
 *
 * Keeps <concurrency> clients busy on 127.0.0.1:<port>: each connects, sends
 * mining.subscribe and mining.authorize in one write, reads until the authorize reply,
 * closes, and starts over. Handshakes completed between the end of the warm-up and the end
 * of the run are counted; clients in flight at the end finish but are not counted. Prints
 * {"handshakes":N,"seconds":S} on stdout; on any failure (a refused authorize, a close before
 * the reply, a connect error) prints the reason on stderr and exits 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES 16384
#define AUTHORIZE_PREFIX "{\"id\":2,"

typedef struct {
  int fd;
  int connected;
  size_t have; /* bytes of an unfinished line kept in buf */
  char buf[BUF_BYTES];
} client;

static struct sockaddr_in target;
static const char *address;
static unsigned long seq;
static int epfd;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "hsload: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void start(client *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("socket", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->connected = 0;
  c->have = 0;
  if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS)
    fail("connect", strerror(errno));
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl", strerror(errno));
}

static void send_handshake(client *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
    fail("connect", strerror(err ? err : errno));
  char lines[512];
  const int n = snprintf(lines, sizeof lines,
                         "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"hashwire-bench/1\"]}\n"
                         "{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"%s.hs%lu\",\"x\"]}\n",
                         address, seq++);
  if (n <= 0 || (size_t)n >= sizeof lines) fail("address too long", address);
  if (write(c->fd, lines, (size_t)n) != n) fail("write", strerror(errno));
  c->connected = 1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl", strerror(errno));
}

/* 1 when the authorize reply arrived (and was a success), 0 to keep reading. */
static int on_readable(client *c) {
  for (;;) {
    const ssize_t got = read(c->fd, c->buf + c->have, BUF_BYTES - c->have);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      fail("read", strerror(errno));
    }
    if (got == 0) fail("closed by the server during the handshake", NULL);
    size_t end = c->have + (size_t)got, line = 0;
    for (size_t i = c->have; i < end; i++) {
      if (c->buf[i] != '\n') continue;
      const size_t len = i - line;
      if (len >= sizeof AUTHORIZE_PREFIX - 1 && memcmp(c->buf + line, AUTHORIZE_PREFIX, sizeof AUTHORIZE_PREFIX - 1) == 0) {
        c->buf[i] = '\0';
        if (memmem(c->buf + line, len, "\"result\":true", 13) == NULL) fail("authorize refused", c->buf + line);
        return 1;
      }
      line = i + 1;
    }
    /* Keep the unfinished line; a line longer than the buffer is not one we look for. */
    if (line < end) {
      if (end - line >= BUF_BYTES) line = end;
      memmove(c->buf, c->buf + line, end - line);
    }
    c->have = end - line;
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: hsload <port> <concurrency> <warmup-seconds> <seconds> <address>\n");
    return 2;
  }
  const int port = atoi(argv[1]), concurrency = atoi(argv[2]);
  const double warmup = atof(argv[3]), seconds = atof(argv[4]);
  address = argv[5];
  if (port <= 0 || port > 65535 || concurrency <= 0 || warmup < 0 || seconds <= 0) fail("bad arguments", NULL);
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)port);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1", strerror(errno));
  client *clients = calloc((size_t)concurrency, sizeof *clients);
  if (clients == NULL) fail("out of memory", NULL);
  for (int i = 0; i < concurrency; i++) start(&clients[i]);

  const double began = now_s(), count_from = began + warmup, stop_at = count_from + seconds;
  unsigned long counted = 0;
  int active = concurrency, stopping = 0;
  struct epoll_event events[256];
  while (active > 0) {
    const int n = epoll_wait(epfd, events, 256, 50);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait", strerror(errno));
    }
    const double t = now_s();
    if (!stopping && t >= stop_at) stopping = 1;
    if (stopping && t >= stop_at + 10) fail("clients still in flight 10 s after the end", NULL);
    for (int i = 0; i < n; i++) {
      client *c = events[i].data.ptr;
      if (!c->connected) {
        send_handshake(c);
        continue;
      }
      if (!on_readable(c)) continue;
      close(c->fd);
      if (t >= count_from && t < stop_at) counted++;
      if (stopping) active--;
      else start(c);
    }
  }
  printf("{\"handshakes\":%lu,\"seconds\":%.6f}\n", counted, seconds);
  return 0;
}
