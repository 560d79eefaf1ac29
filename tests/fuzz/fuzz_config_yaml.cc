// Fuzz target: the YAML config loader (a ConfigMap's cachecar.yaml), then
// validation, as LoadConfig runs them.
#include <cstddef>
#include <cstdint>

#include "config/config.h"
#include "config/yaml_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  cachecar::config::Config config;
  if (cachecar::config::ApplyYamlText(text, "fuzz.yaml", config).ok()) {
    cachecar::config::Validate(config).IgnoreError();
    cachecar::config::DescribeConfig(config);
  }
  return 0;
}
