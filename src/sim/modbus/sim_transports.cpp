// SPDX-License-Identifier: Apache-2.0
#include "sim/modbus/sim_transports.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/serial_port.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <istream>
#include <stdexcept>

#include "common/log.h"

namespace fieldhub::sim {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Serialises writes on one stream: at most one async_write in flight, in order.
template <typename Stream>
class WriteQueue {
 public:
  explicit WriteQueue(Stream& stream) : stream_(stream) {}

  // `keep_alive` holds the owner alive until the write completes.
  template <typename KeepAlive>
  void push(std::vector<std::uint8_t> bytes, KeepAlive keep_alive) {
    queue_.push_back(std::move(bytes));
    if (queue_.size() == 1) next(std::move(keep_alive));
  }

 private:
  template <typename KeepAlive>
  void next(KeepAlive keep_alive) {
    asio::async_write(stream_, asio::buffer(queue_.front()),
                      [this, keep_alive](const boost::system::error_code& ec, std::size_t) {
                        if (ec) {
                          queue_.clear();
                          return;
                        }
                        queue_.pop_front();
                        if (!queue_.empty()) next(keep_alive);
                      });
  }

  Stream& stream_;
  std::deque<std::vector<std::uint8_t>> queue_;
};

class TcpSession : public std::enable_shared_from_this<TcpSession> {
 public:
  TcpSession(tcp::socket socket, Simulator& sim, std::size_t bus, Clock::time_point start)
      : socket_(std::move(socket)), sim_(sim), bus_(bus), start_(start), writes_(socket_) {}

  void run() {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);  // small request/reply exchanges
    read();
  }

 private:
  void read() {
    socket_.async_read_some(
        asio::buffer(chunk_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          if (ec) return;
          self->in_.insert(self->in_.end(), self->chunk_.begin(),
                           self->chunk_.begin() + static_cast<long>(n));
          if (self->process()) self->read();
        });
  }

  // Handles every complete frame in in_; false if the stream cannot be Modbus TCP (closed).
  bool process() {
    std::size_t at = 0;
    bool ok = true;
    while (true) {
      const std::span<const std::uint8_t> rest(in_.data() + at, in_.size() - at);
      const auto size = mbap_frame_size(rest);
      if (!size) {
        ++sim_.buses()[bus_].bad_frames;
        boost::system::error_code ignored;
        socket_.close(ignored);
        ok = false;
        break;
      }
      if (*size == 0) break;
      const auto frame = rest.first(*size);
      const Request request{.framing = Framing::tcp,
                            .unit = frame[6],
                            .transaction = static_cast<std::uint16_t>((frame[0] << 8) | frame[1]),
                            .frame = frame};
      for (auto& t : sim_.handle(bus_, request, frame.subspan(mbap_size), seconds_since(start_))) {
        send(std::move(t));
      }
      at += *size;
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<long>(at));
    return ok;
  }

  void send(Transmission t) {
    if (t.delay.count() == 0) {
      writes_.push(std::move(t.bytes), shared_from_this());
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), t.delay);
    timer->async_wait([self = shared_from_this(), timer,
                       bytes = std::move(t.bytes)](const boost::system::error_code& ec) mutable {
      if (!ec && self->socket_.is_open()) self->writes_.push(std::move(bytes), self);
    });
  }

  tcp::socket socket_;
  Simulator& sim_;
  std::size_t bus_;
  Clock::time_point start_;
  std::array<std::uint8_t, 4096> chunk_{};
  std::vector<std::uint8_t> in_;
  WriteQueue<tcp::socket> writes_;
};

}  // namespace

class TcpBusListener {
 public:
  TcpBusListener(asio::io_context& io, Simulator& sim, std::size_t bus, Clock::time_point start)
      : acceptor_(io), sim_(sim), bus_(bus), start_(start) {}

  void start() {
    Bus& bus = sim_.buses()[bus_];
    const tcp::endpoint endpoint(asio::ip::make_address(bus.host), bus.port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    bus.port = acceptor_.local_endpoint().port();
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<TcpSession>(std::move(socket), sim_, bus_, start_)->run();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  Simulator& sim_;
  std::size_t bus_;
  Clock::time_point start_;
};

// One serial line. A frame ends after 3.5 character times of silence (serial line V1.02,
// 2.5.1.1); a reply is written when its last byte would have arrived at the line's baud rate.
class RtuBusLine {
 public:
  RtuBusLine(asio::io_context& io, Simulator& sim, std::size_t bus, Clock::time_point start)
      : port_(io), gap_timer_(io), sim_(sim), bus_(bus), start_(start), writes_(port_) {}

  void start() {
    const Bus& bus = sim_.buses()[bus_];
    port_.open(bus.device);
    using asio::serial_port_base;
    port_.set_option(serial_port_base::baud_rate(bus.baud));
    port_.set_option(serial_port_base::character_size(8));
    port_.set_option(serial_port_base::parity(bus.parity == 'E' ? serial_port_base::parity::even
                                              : bus.parity == 'O'
                                                  ? serial_port_base::parity::odd
                                                  : serial_port_base::parity::none));
    port_.set_option(serial_port_base::stop_bits(
        bus.stop_bits == 2 ? serial_port_base::stop_bits::two : serial_port_base::stop_bits::one));
    port_.set_option(serial_port_base::flow_control(serial_port_base::flow_control::none));
    read();
  }

 private:
  void read() {
    port_.async_read_some(
        asio::buffer(chunk_), [this](const boost::system::error_code& ec, std::size_t n) {
          if (ec) {
            common::log(common::LogLevel::error, "modbus-sim",
                        "serial read on " + sim_.buses()[bus_].device + ": " + ec.message());
            return;
          }
          frame_.insert(frame_.end(), chunk_.begin(), chunk_.begin() + static_cast<long>(n));
          // An RTU frame is at most 256 bytes (serial line V1.02, 2.5.1): endless noise without a
          // gap is dropped as it comes instead of growing the buffer.
          if (frame_.size() > max_rtu_frame) {
            frame_.clear();
            overflow_ = true;
          }
          gap_timer_.expires_after(sim_.buses()[bus_].frame_gap());
          gap_timer_.async_wait([this](const boost::system::error_code& timer_ec) {
            if (!timer_ec) end_of_frame();
          });
          read();
        });
  }

  void end_of_frame() {
    Bus& bus = sim_.buses()[bus_];
    std::vector<std::uint8_t> frame;
    frame.swap(frame_);
    if (overflow_) {
      overflow_ = false;
      ++bus.bad_frames;
      return;
    }
    // A slave ignores a frame that is too short or fails its CRC (serial line V1.02, 2.4.1).
    if (frame.size() < 4 || !crc_ok(frame)) {
      ++bus.bad_frames;
      return;
    }
    const Request request{.framing = Framing::rtu, .unit = frame[0], .frame = frame};
    const std::span<const std::uint8_t> pdu(frame.data() + 1, frame.size() - 3);
    auto replies = sim_.handle(bus_, request, pdu, seconds_since(start_));
    const auto now = Clock::now();
    for (auto& t : replies) {
      auto at = now + bus.turnaround + t.delay;
      // A late reply does not hold the line for the replies after it.
      const bool late = t.delay.count() > 0;
      if (!late && t.gap_before) at = std::max(at, line_free_ + bus.frame_gap());
      if (!late) at = std::max(at, line_free_);
      at += bus.transmit_time(t.bytes.size());
      if (!late) line_free_ = at;
      auto timer = std::make_shared<asio::steady_timer>(port_.get_executor(), at);
      timer->async_wait(
          [this, timer, bytes = std::move(t.bytes)](const boost::system::error_code& ec) mutable {
            if (!ec) writes_.push(std::move(bytes), 0);
          });
    }
  }

  asio::serial_port port_;
  asio::steady_timer gap_timer_;
  Simulator& sim_;
  std::size_t bus_;
  Clock::time_point start_;
  Clock::time_point line_free_{};
  std::array<std::uint8_t, 512> chunk_{};
  static constexpr std::size_t max_rtu_frame = 256;
  std::vector<std::uint8_t> frame_;
  bool overflow_ = false;
  WriteQueue<asio::serial_port> writes_;
};

namespace {

class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(tcp::socket socket, Simulator& sim) : socket_(std::move(socket)), sim_(sim) {}

  void read() {
    asio::async_read_until(
        socket_, in_, '\n',
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (ec) return;
          std::istream stream(&self->in_);
          std::string line;
          std::getline(stream, line);
          const std::string reply = self->sim_.execute(line);
          common::log(common::LogLevel::info, "modbus-sim", "control: " + line + " -> " + reply);
          self->out_ = reply + "\n";
          asio::async_write(self->socket_, asio::buffer(self->out_),
                            [self](const boost::system::error_code& wec, std::size_t) {
                              if (!wec) self->read();
                            });
        });
  }

 private:
  tcp::socket socket_;
  Simulator& sim_;
  asio::streambuf in_{4096};
  std::string out_;
};

}  // namespace

class ControlListener {
 public:
  ControlListener(asio::io_context& io, Simulator& sim) : acceptor_(io), sim_(sim) {}

  std::uint16_t start(std::uint16_t port) {
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    accept();
    return acceptor_.local_endpoint().port();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<ControlSession>(std::move(socket), sim_)->read();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  Simulator& sim_;
};

SimServer::SimServer(asio::io_context& io, Simulator& sim,
                     std::optional<std::uint16_t> control_port)
    : io_(io), sim_(sim), control_port_(control_port) {}

SimServer::~SimServer() = default;

void SimServer::start() {
  for (std::size_t b = 0; b < sim_.buses().size(); ++b) {
    const Bus& bus = sim_.buses()[b];
    try {
      if (bus.framing == Framing::tcp) {
        tcp_.push_back(std::make_unique<TcpBusListener>(io_, sim_, b, started_));
        tcp_.back()->start();
      } else {
        rtu_.push_back(std::make_unique<RtuBusLine>(io_, sim_, b, started_));
        rtu_.back()->start();
      }
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error(
          "bus " + std::to_string(b) + " (" +
          (bus.framing == Framing::tcp ? bus.host + ":" + std::to_string(bus.port) : bus.device) +
          "): " + e.code().message());
    }
  }
  if (control_port_) {
    control_ = std::make_unique<ControlListener>(io_, sim_);
    try {
      control_port_ = control_->start(*control_port_);
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("control port " + std::to_string(*control_port_) + ": " +
                               e.code().message());
    }
  }
}

std::string SimServer::ready_text() const {
  std::string out;
  if (control_port_) out += "control " + std::to_string(*control_port_) + "\n";
  for (std::size_t b = 0; b < sim_.buses().size(); ++b) {
    const Bus& bus = sim_.buses()[b];
    out += bus.framing == Framing::tcp ? "tcp " + std::to_string(b) + " " + std::to_string(bus.port)
                                       : "rtu " + std::to_string(b) + " " + bus.device;
    out += "\n";
  }
  return out + "ready\n";
}

}  // namespace fieldhub::sim
