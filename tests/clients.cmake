# The client libraries (clients/cpp, clients/go, clients/python): their unit
# tests, packaging, and the conformance list (clients/conformance/cases.json)
# run by every client against a live cachecar, with the memory store and with
# PostgreSQL + Kafka. Included from tests/CMakeLists.txt (which finds BASH and
# sets GRPCURL, PG_FIXTURE_DIR, KAFKA_FIXTURE_DIR and KAFKA_SH).
set(CACHECAR_CLIENTS_TESTS "${CMAKE_CURRENT_LIST_DIR}/clients")
set(CACHECAR_CONFORMANCE "${PROJECT_SOURCE_DIR}/clients/conformance/run.sh")
set(CLIENTS_GO_WORK "${CMAKE_CURRENT_BINARY_DIR}/clients-go")
set(CLIENTS_PYTHON_WORK "${CMAKE_CURRENT_BINARY_DIR}/clients-python")

cachecar_test(client_retry_test SOURCES ${PROJECT_SOURCE_DIR}/clients/cpp/tests/retry_test.cc
  LIBS cachecar_client)
target_include_directories(client_retry_test PRIVATE ${PROJECT_SOURCE_DIR}/clients/cpp/src)

# The C++ package built on its own, installed, and found by an outside app.
add_test(NAME clients_cpp_package
  COMMAND ${BASH} ${CACHECAR_CLIENTS_TESTS}/cpp_package.sh $<TARGET_FILE:cachecar>
          ${CMAKE_CURRENT_BINARY_DIR}/clients-cpp-package)
set_tests_properties(clients_cpp_package PROPERTIES LABELS "clients" TIMEOUT 1200)

# Go and Python: lint/unit/stub checks, and the toolchains the conformance
# and example tests use (ctest fixtures).
add_test(NAME clients_go COMMAND ${BASH} ${CACHECAR_CLIENTS_TESTS}/go.sh ${CLIENTS_GO_WORK})
add_test(NAME clients_python COMMAND ${BASH} ${CACHECAR_CLIENTS_TESTS}/python.sh ${CLIENTS_PYTHON_WORK})
set_tests_properties(clients_go PROPERTIES FIXTURES_SETUP clients_go LABELS "clients" TIMEOUT 1800)
set_tests_properties(clients_python PROPERTIES FIXTURES_SETUP clients_python LABELS "clients" TIMEOUT 900
  ENVIRONMENT "LIBCACHECAR_LOCALREAD=$<TARGET_FILE:cachecar_localread_shared>")

# cachecar_conformance(CLIENT STORE RUNNER...): the list through one client.
function(cachecar_conformance client store)
  set(name conformance_${client}_${store})
  set(args --client ${client} --store ${store} --cachecar $<TARGET_FILE:cachecar> --grpcurl ${GRPCURL}
           --work ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set(fixtures)
  set(locks)
  if(store STREQUAL "postgres")
    list(APPEND args --pg-env ${PG_FIXTURE_DIR}/env --kafka-env ${KAFKA_FIXTURE_DIR}/env --kafka-sh ${KAFKA_SH})
    # Its own database and topic, but it stops the shared broker.
    set(fixtures postgres kafka)
    set(locks postgres kafka)
  endif()
  if(client STREQUAL "go" OR client STREQUAL "python")
    list(APPEND fixtures clients_${client})
  endif()
  add_test(NAME ${name} COMMAND ${BASH} ${CACHECAR_CONFORMANCE} ${args} -- ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS "clients;conformance;e2e" TIMEOUT 900
    FIXTURES_REQUIRED "${fixtures}")
  if(locks)
    set_tests_properties(${name} PROPERTIES RESOURCE_LOCK "${locks}")
  endif()
  # Python's local reads use the reader the package built for itself
  # (cachecar._localread): no LIBCACHECAR_LOCALREAD here.
endfunction()

foreach(store memory postgres)
  cachecar_conformance(cpp ${store} $<TARGET_FILE:cachecar_client_conformance>)
  cachecar_conformance(go ${store} ${CLIENTS_GO_WORK}/bin/conformance)
  cachecar_conformance(python ${store} ${CLIENTS_PYTHON_WORK}/venv/bin/python
                       ${PROJECT_SOURCE_DIR}/clients/python/tests/conformance.py)
endforeach()
