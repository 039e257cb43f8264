#pragma once
/// \file Grad mode: thread-local switch that decides whether ops record the graph.

namespace tape {

/// True when ops record nodes (the default).
bool grad_enabled();
void set_grad_enabled(bool on);

/// RAII: nothing in its scope is recorded (like torch::NoGradGuard).
struct NoGradGuard {
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// RAII: records again inside a NoGradGuard scope.
struct EnableGradGuard {
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace tape
