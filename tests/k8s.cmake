# Kubernetes manifests (deploy/k8s): offline strict schema validation with a
# pinned kubernetes-validate in a venv under the build tree (reused across
# runs). Needs python3 with venv and PyPI on first run; no cluster.
# include()d from tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is tests/.
find_program(BASH bash REQUIRED)
add_test(NAME k8s_manifests
  COMMAND ${BASH} ${CMAKE_CURRENT_SOURCE_DIR}/k8s/validate.sh
          ${CMAKE_CURRENT_BINARY_DIR}/k8s-validate)
set_tests_properties(k8s_manifests PROPERTIES LABELS "k8s" TIMEOUT 600)
