// A 2-rank job in which rank 1 fails while rank 0 waits in an all_reduce, for
// tests/dist_test.sh: the job must end non-zero, promptly, naming rank 1.
//   mpirun -np 2 tape_dist_fault throw|kill|hang|ok
//   throw: rank 1 throws out of main (the terminate handler aborts the job)
//   kill:  rank 1 dies of SIGKILL (mpirun ends the job)
//   hang:  rank 1 sleeps; rank 0's collective times out (TAPE_DIST_TIMEOUT)
//   ok:    both ranks reduce, run a DDP backward and finalize (the DDP outlives it); exit 0
#include <csignal>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include <tape/tape.hpp>

int main(int argc, char** argv) {
  tape::dist::init(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "ok";
  if (tape::dist::rank() == 1) {
    if (mode == "throw") throw std::runtime_error("rank 1 could not read its shard");
    if (mode == "kill") std::raise(SIGKILL);
    if (mode == "hang") std::this_thread::sleep_for(std::chrono::seconds(120));
  }
  tape::Tensor t = tape::full({4}, 1.0);
  tape::dist::all_reduce(t);
  std::printf("rank %d: sum %g\n", tape::dist::rank(), double(t.to_vector<float>()[0]));
  // ok: a DistributedDataParallel (with its shared-memory window) that outlives finalize
  auto lin = std::make_shared<tape::nn::Linear>(4, 2);
  tape::dist::DistributedDataParallel ddp(lin);
  tape::sum(ddp(tape::full({3, 4}, 1.0 + tape::dist::rank()))).backward();
  std::printf("rank %d: bias grad %g\n", tape::dist::rank(), double(lin->bias.grad().to_vector<float>()[0]));
  tape::dist::finalize();
  return 0;  // ddp is destroyed after finalize
}
