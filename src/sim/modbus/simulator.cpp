// SPDX-License-Identifier: Apache-2.0
#include "sim/modbus/simulator.h"

#include <charconv>

namespace fieldhub::sim {

namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  return words;
}

template <typename T>
std::optional<T> number(std::string_view text) {
  int base = 10;
  if (text.starts_with("0x")) {
    text.remove_prefix(2);
    base = 16;
  }
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool is_write(std::uint8_t fc) {
  return fc == 0x05 || fc == 0x06 || fc == 0x0F || fc == 0x10;
}

}  // namespace

void Bus::reindex() {
  index.fill(-1);
  for (std::size_t i = 0; i < units.size(); ++i) {
    index[units[i].device.id] = static_cast<std::int32_t>(i);
  }
}

SimUnit* Bus::unit(std::uint8_t id) {
  const auto i = index[id];
  return i < 0 ? nullptr : &units[static_cast<std::size_t>(i)];
}

std::chrono::microseconds Bus::frame_gap() const {
  if (baud > 19200) return std::chrono::microseconds{1750};
  return std::chrono::microseconds{35LL * bits_per_char() * 100'000 / baud};
}

std::chrono::microseconds Bus::transmit_time(std::size_t bytes) const {
  return std::chrono::microseconds{static_cast<long long>(bytes) * bits_per_char() * 1'000'000 /
                                   baud};
}

Simulator::Simulator(std::vector<Bus> buses) : buses_(std::move(buses)) {
  for (auto& b : buses_) b.reindex();
}

std::vector<Transmission> Simulator::handle(std::size_t bus_index, const Request& request,
                                            std::span<const std::uint8_t> pdu, double t) {
  Bus& bus = buses_.at(bus_index);
  if (request.framing == Framing::rtu && request.unit == 0) {
    // Broadcast (serial line V1.02, 2.1): every slave executes a write, none replies.
    if (!pdu.empty() && is_write(pdu[0])) {
      for (auto& u : bus.units) {
        if (!u.device.stopped) serve_pdu(u.device, pdu, t);
      }
    }
    return {};
  }
  SimUnit* unit = bus.unit(request.unit);
  if (unit == nullptr) {
    ++bus.unknown_unit;
    if (request.framing == Framing::tcp && bus.unknown_unit_exception && !pdu.empty()) {
      return frame_replies(request, exception_pdu(pdu[0], exception::gateway_target_failed),
                           nullptr);
    }
    return {};
  }
  ++unit->requests;
  if (unit->device.stopped) return {};

  const auto range = request_range(pdu);
  Fault* fault = nullptr;
  for (auto& f : unit->faults) {
    if (f.fires(pdu.empty() ? 0 : pdu[0], range)) {
      fault = &f;
      break;
    }
  }
  if (fault != nullptr && fault->kind == FaultKind::silence) return {};
  ++unit->replies;
  if (fault != nullptr && fault->kind == FaultKind::exception) {
    return frame_replies(request, exception_pdu(pdu.empty() ? 0 : pdu[0], fault->code), nullptr);
  }
  if (fault != nullptr && fault->kind == FaultKind::ignore_write) {
    // Served on a copy: the reply says done, the tables keep their values.
    Unit scratch = unit->device;
    return frame_replies(request, serve_pdu(scratch, pdu, t), nullptr);
  }
  return frame_replies(request, serve_pdu(unit->device, pdu, t), fault);
}

std::vector<SimUnit*> Simulator::select(std::string_view selector, std::string& error) {
  std::vector<SimUnit*> out;
  std::optional<std::size_t> bus_index;
  if (const auto slash = selector.find('/'); slash != std::string_view::npos) {
    bus_index = number<std::size_t>(selector.substr(0, slash));
    if (!bus_index || *bus_index >= buses_.size()) {
      error = "no bus '" + std::string(selector.substr(0, slash)) + "'";
      return {};
    }
    selector.remove_prefix(slash + 1);
  }
  std::optional<unsigned> id;
  if (selector != "*") {
    id = number<unsigned>(selector);
    if (!id || *id > 255) {
      error = "bad unit '" + std::string(selector) + "'";
      return {};
    }
  }
  for (std::size_t b = 0; b < buses_.size(); ++b) {
    if (bus_index && b != *bus_index) continue;
    for (auto& u : buses_[b].units) {
      if (!id || u.device.id == *id) out.push_back(&u);
    }
  }
  if (out.empty()) error = "no such unit";
  return out;
}

std::string Simulator::execute(std::string_view line) {
  const auto words = split_words(line);
  if (words.empty()) return "error empty command";
  const std::string_view cmd = words[0];
  if (cmd == "ping") return "ok";
  if (cmd == "help") {
    return "ok commands: ping | fault SEL KIND [delay_ms=N code=N from=A to=B every=N bytes=N "
           "function=N times=N] | clear SEL | stop SEL | start SEL | set SEL TABLE ADDRESS "
           "VALUE... | stats [SEL] | "
           "list [SEL]; SEL = * | UNIT | BUS/UNIT | BUS/*";
  }
  std::string error;
  const std::string_view selector = words.size() >= 2 ? words[1] : std::string_view{"*"};
  if (cmd != "stats" && cmd != "list" && words.size() < 2) return "error missing unit selector";
  auto units = select(selector, error);
  if (units.empty()) return "error " + error;

  if (cmd == "fault") {
    auto fault = parse_fault(std::span(words).subspan(2), error);
    if (!fault) return "error " + error;
    for (auto* u : units) u->faults.push_back(*fault);
    return "ok " + std::to_string(units.size()) + " units: " + describe(*fault);
  }
  if (cmd == "clear") {
    for (auto* u : units) u->faults.clear();
    return "ok " + std::to_string(units.size()) + " units";
  }
  if (cmd == "stop" || cmd == "start") {
    for (auto* u : units) u->device.stopped = cmd == "stop";
    return "ok " + std::to_string(units.size()) + " units";
  }
  if (cmd == "set") {
    if (words.size() < 5) return "error usage: set SEL TABLE ADDRESS VALUE...";
    const auto table = parse_table(words[2]);
    const auto address = number<std::uint16_t>(words[3]);
    if (!table || !address) return "error bad table or address";
    std::vector<std::uint16_t> values;
    for (std::size_t i = 4; i < words.size(); ++i) {
      const auto v = number<std::uint16_t>(words[i]);
      if (!v) return "error bad value '" + std::string(words[i]) + "'";
      values.push_back(*v);
    }
    for (auto* u : units) {
      if (!u->device.set(*table, *address, values)) return "error address out of range";
    }
    return "ok " + std::to_string(units.size()) + " units";
  }
  if (cmd == "stats") {
    std::uint64_t requests = 0, replies = 0, bad_frames = 0, unknown = 0;
    for (auto* u : units) {
      requests += u->requests;
      replies += u->replies;
    }
    if (selector == "*") {
      for (const auto& b : buses_) {
        bad_frames += b.bad_frames;
        unknown += b.unknown_unit;
      }
    }
    return "ok units=" + std::to_string(units.size()) + " requests=" + std::to_string(requests) +
           " replies=" + std::to_string(replies) + " bad_frames=" + std::to_string(bad_frames) +
           " unknown_unit=" + std::to_string(unknown);
  }
  if (cmd == "list") {
    std::string out = "ok";
    std::size_t shown = 0;
    for (auto* u : units) {
      if (++shown > 64) {
        out += " ...";
        break;
      }
      out += ' ';
      out += std::to_string(u->device.id);
      out += ':';
      out += u->device.name;
      if (u->device.stopped) out += "[stopped]";
      for (const auto& f : u->faults) {
        out += '[';
        out += describe(f);
        out += ']';
      }
    }
    return out;
  }
  return "error unknown command '" + std::string(cmd) + "'";
}

}  // namespace fieldhub::sim
