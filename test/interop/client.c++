// A client built on the reference Cap'n Proto implementation (C++, capnp-rpc), run against the
// Parallax server by cpp-interop.test.ts. It connects over TCP, bootstraps `Demo`
// (schema/demo.capnp) and runs one check per step, printing `ok <step>` for each that passes.
//
// Usage: interop-client <port>
//
// Built by the test in a temporary folder; by hand, from the repository root:
//   capnp compile -oc++:$DIR --src-prefix=schema schema/demo.capnp
//   g++ -std=c++17 -I$DIR test/interop/client.c++ $DIR/demo.capnp.c++ \
//       $(pkg-config --cflags --libs capnp-rpc) -o $DIR/interop-client
//
// After the last step it drops every capability it holds, prints `released` and keeps the
// connection open until stdin reaches end-of-file, so that the test can check the server's tables
// while the connection is still up (and so that the Finish and Release messages are on the wire
// before the process exits). Run by hand with `</dev/null`, it lingers 100 ms and exits.
//
// Exit status: 0 if every step passed; 1 with `FAIL <step>: <why>` on stderr otherwise; 2 for
// bad usage.

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <kj/exception.h>
#include <kj/timer.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "demo.capnp.h"

namespace {

// A check that did not hold; `main` reports it with the step that was running.
class CheckFailed : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

void check(bool condition, const std::string& why) {
  if (!condition) throw CheckFailed(why);
}

// A Listener that records the events it receives, in order.
class RecordingListener final : public Listener::Server {
public:
  const std::vector<uint32_t>& events() const { return events_; }

protected:
  kj::Promise<void> event(EventContext context) override {
    events_.push_back(context.getParams().getN());
    return kj::READY_NOW;
  }

private:
  std::vector<uint32_t> events_;
};

// (a) echo: the payload comes back byte for byte.
void stepEcho(Demo::Client& demo, kj::WaitScope& waitScope) {
  constexpr size_t size = 100;
  auto payload = kj::heapArray<kj::byte>(size);
  for (size_t i = 0; i < size; i++) payload[i] = static_cast<kj::byte>(i * 37 + 11);

  auto request = demo.echoRequest();
  request.setPayload(payload);
  auto response = request.send().wait(waitScope);
  auto echoed = response.getPayload();
  check(echoed.size() == size,
        "expected " + std::to_string(size) + " bytes back, got " + std::to_string(echoed.size()));
  check(std::equal(echoed.begin(), echoed.end(), payload.begin()), "the echoed bytes differ");
}

// (b) newCounter(10).counter.inc(5).self.inc(1).self.get(), all sent before any answer arrives.
void stepPipeline(Demo::Client& demo, kj::WaitScope& waitScope) {
  auto newCounter = demo.newCounterRequest();
  newCounter.setStart(10);
  Counter::Client counter = newCounter.send().getCounter();

  auto first = counter.incRequest();
  first.setBy(5);
  Counter::Client afterFirst = first.send().getSelf();

  auto second = afterFirst.incRequest();
  second.setBy(1);
  Counter::Client afterSecond = second.send().getSelf();

  auto value = afterSecond.getRequest().send().wait(waitScope).getValue();
  check(value == 16, "expected 16, got " + std::to_string(value));
}

// (c) subscribe(listener, 5): the server calls our listener with 1..5, in order.
void stepSubscribe(Demo::Client& demo, kj::WaitScope& waitScope) {
  auto owned = kj::heap<RecordingListener>();
  const RecordingListener& listener = *owned;
  // `cap` owns the listener (shared with the server while it holds it); keeping `cap` alive until
  // the end of this function keeps `listener` valid.
  Listener::Client cap = kj::mv(owned);

  auto request = demo.subscribeRequest();
  request.setListener(cap);
  request.setCount(5);
  request.send().wait(waitScope);

  const std::vector<uint32_t> expected{1, 2, 3, 4, 5};
  std::string got;
  for (auto n : listener.events()) got += (got.empty() ? "" : ",") + std::to_string(n);
  check(listener.events() == expected, "expected events 1,2,3,4,5, got [" + got + "]");
}

// (d) fail("boom") answers with an exception whose description names the reason.
void stepFail(Demo::Client& demo, kj::WaitScope& waitScope) {
  auto request = demo.failRequest();
  request.setReason("boom");
  auto promise = request.send();
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&]() { promise.wait(waitScope); })) {
    std::string description = exception->getDescription().cStr();
    check(description.find("boom") != std::string::npos,
          "the exception does not mention \"boom\": " + description);
    check(exception->getType() == kj::Exception::Type::FAILED,
          "expected an exception of type FAILED: " + description);
  } else {
    throw CheckFailed("fail(\"boom\") returned normally");
  }
}

// Keeps the event loop running (and so sends what is queued) until stdin reaches end-of-file. A
// file or /dev/null cannot be watched by epoll; with one of those the client lingers 100 ms instead.
void lingerUntilStdinCloses(capnp::EzRpcClient& client) {
  auto& waitScope = client.getWaitScope();
  struct stat st;
  bool watchable = fstat(STDIN_FILENO, &st) == 0 &&
                   (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO));
  if (!watchable) {
    client.getIoProvider().getTimer().afterDelay(100 * kj::MILLISECONDS).wait(waitScope);
    return;
  }
  auto input = client.getLowLevelIoProvider().wrapInputFd(STDIN_FILENO);
  kj::byte buffer[256];
  while (input->tryRead(buffer, 1, sizeof(buffer)).wait(waitScope) > 0) {
  }
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " <port>" << std::endl;
    return 2;
  }
  char* end = nullptr;
  unsigned long port = std::strtoul(argv[1], &end, 10);
  if (*argv[1] == '\0' || *end != '\0' || port == 0 || port > 65535) {
    std::cerr << "not a port: " << argv[1] << std::endl;
    return 2;
  }

  const char* step = "connect";
  try {
    capnp::EzRpcClient client("127.0.0.1", static_cast<uint>(port));
    auto& waitScope = client.getWaitScope();
    {
      Demo::Client demo = client.getMain<Demo>();
      struct Step {
        const char* name;
        void (*run)(Demo::Client&, kj::WaitScope&);
      };
      const Step steps[] = {
          {"echo", stepEcho},
          {"pipeline", stepPipeline},
          {"subscribe", stepSubscribe},
          {"fail", stepFail},
      };
      for (const auto& s : steps) {
        step = s.name;
        s.run(demo, waitScope);
        std::cout << "ok " << s.name << std::endl;
      }
    }
    step = "release";
    std::cout << "released" << std::endl;
    lingerUntilStdinCloses(client);
  } catch (const kj::Exception& e) {
    std::cerr << "FAIL " << step << ": " << kj::str(e).cStr() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "FAIL " << step << ": " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
