// Storage for the grad mode and anomaly mode switches.
#include "autograd/grad_mode.h"

namespace weft {

[[gnu::tls_model("initial-exec")]] constinit thread_local bool GradMode::enabled_ = true;
bool AnomalyMode::enabled_ = false;

}  // namespace weft
