// rpc_floor [N]: what one request/reply round trip costs on this machine
// before any ringfs code runs, to tell the RPC layer's share from the
// machine's. Three ping-pongs of a 16-byte message, N round trips each:
//   tcp    - two processes, blocking read/write on a loopback TCP socket
//            (two thread wakeups per round trip: the floor for any RPC);
//   zmq    - two processes, DEALER -> ROUTER over loopback TCP (each
//            process also hops through its ZeroMQ I/O thread: six wakeups);
//   zmq-1  - the same in one process, one shared ZeroMQ I/O thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <zmq.hpp>

namespace {

double Micros(std::chrono::steady_clock::time_point t0, int n) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
}

void Echo(zmq::socket_t& router, int n) {
  for (int i = 0; i < n; i++) {
    zmq::message_t id, body;
    if (!router.recv(id) || !router.recv(body)) return;
    router.send(id, zmq::send_flags::sndmore);
    router.send(body, zmq::send_flags::none);
  }
}

double Ping(zmq::socket_t& dealer, int n) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) {
    zmq::message_t m(16), r;
    dealer.send(m, zmq::send_flags::none);
    if (!dealer.recv(r)) return -1;
  }
  return Micros(t0, n);
}

double Tcp(int n) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return -1;
  int one = 1;
  pid_t pid = fork();
  if (pid == 0) {
    int c = accept(ls, nullptr, nullptr);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[16];
    for (int i = 0; i < n; i++)
      if (read(c, b, sizeof b) != sizeof b || write(c, b, sizeof b) != sizeof b) break;
    _exit(0);
  }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char b[16] = {};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++)
    if (write(c, b, sizeof b) != sizeof b || read(c, b, sizeof b) != sizeof b) return -1;
  double us = Micros(t0, n);
  close(c);
  close(ls);
  waitpid(pid, nullptr, 0);
  return us;
}

double ZmqTwoProcesses(int n) {
  // The port is picked by the child's bind and passed back through a pipe.
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    zmq::context_t ctx(1);
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.bind("tcp://127.0.0.1:*");
    std::string ep = router.get(zmq::sockopt::last_endpoint);
    if (write(fds[1], ep.data(), ep.size()) < 0) _exit(1);
    close(fds[1]);
    Echo(router, n);
    router.close();  // sends the last reply (linger) before the process goes
    ctx.close();
    _exit(0);
  }
  close(fds[1]);
  char buf[256];
  ssize_t got = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  if (got <= 0) return -1;
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.connect(std::string(buf, static_cast<size_t>(got)));
  double us = Ping(dealer, n);
  dealer.close();
  waitpid(pid, nullptr, 0);
  return us;
}

double ZmqOneProcess(int n) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  std::string ep = router.get(zmq::sockopt::last_endpoint);
  std::thread server([&] { Echo(router, n); });
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.connect(ep);
  double us = Ping(dealer, n);
  server.join();
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const int n = argc > 1 ? std::max(1, atoi(argv[1])) : 20000;
  printf("tcp_us %.1f\n", Tcp(n));
  printf("zmq_us %.1f\n", ZmqTwoProcesses(n));
  printf("zmq_one_process_us %.1f\n", ZmqOneProcess(n));
  return 0;
}
