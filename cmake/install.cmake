# Install rules and the Debian package (CPack DEB): `cmake --install BUILD`
# or `cpack --config BUILD/CPackConfig.cmake -G DEB` (docs/packaging.md).
# The prefix defaults to /usr, as for a Debian package; /etc and /var stay
# absolute (GNUInstallDirs maps them for the /usr prefix).

include(GNUInstallDirs)

install(TARGETS pushgate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# /etc/pushgate: the example an operator edits (conffiles in the package).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/etc/pushgate/ DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/pushgate)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/config/example/scripts/build.sh ${PROJECT_SOURCE_DIR}/config/example/scripts/test.sh
        ${PROJECT_SOURCE_DIR}/config/example/scripts/abi-record
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/pushgate/scripts)

# systemd: the service (Type=notify, watchdog), retention timer, user, directories.
set(PUSHGATE_BINARY ${CMAKE_INSTALL_FULL_BINDIR}/pushgate)
foreach(unit pushgate.service pushgate-gc.service pushgate-gc.timer)
  configure_file(${PROJECT_SOURCE_DIR}/config/systemd/${unit}.in ${CMAKE_BINARY_DIR}/systemd/${unit} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/systemd/${unit} DESTINATION lib/systemd/system)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/config/systemd/sysusers.conf DESTINATION lib/sysusers.d RENAME pushgate.conf)
install(FILES ${PROJECT_SOURCE_DIR}/config/systemd/tmpfiles.conf DESTINATION lib/tmpfiles.d RENAME pushgate.conf)

# Shell completion, docs, schemas.
install(FILES ${PROJECT_SOURCE_DIR}/config/completion/pushgate.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME pushgate)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/schemas/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pushgate/schemas)

# The man page, generated from --help by help2man (Debian package help2man).
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(man ${CMAKE_BINARY_DIR}/man/pushgate.1)
  add_custom_command(OUTPUT ${man}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0 ${HELP2MAN} --no-info --no-discard-stderr --section=1
            --name=push-gate\ CI\ orchestrator\ for\ projects\ made\ of\ several\ git\ trees
            --include=${PROJECT_SOURCE_DIR}/config/man/pushgate.h2m
            --output=${man} $<TARGET_FILE:pushgate>
    DEPENDS pushgate ${PROJECT_SOURCE_DIR}/config/man/pushgate.h2m
    COMMENT "man page pushgate.1 (help2man)")
  add_custom_target(man ALL DEPENDS ${man})
  install(FILES ${man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "help2man not found: no man page (apt install help2man)")
endif()

# The Debian package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pushgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "pushgate developers <pushgate@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "push-gate CI orchestrator for projects made of several git trees")
set(CPACK_PACKAGE_DESCRIPTION
    "pushgate resolves per-branch component revisions, runs flights of jobs on bare-metal and\n libvirt hosts, records every result in SQLite and fast-forwards a branch's tested ref only\n when the flight shows no regression against the baseline.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# git: the mirror transport for local upstreams; ssh for bare-metal hosts; tzdata for cron.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "git, openssh-client, tzdata, systemd")
# python3 and QEMU: the example ABI recorder (/etc/pushgate/scripts/abi-record, docs/abi.md).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "graphviz, libvirt-daemon-system, python3, qemu-system-x86")
# Everything installed under /etc is a conffile: an upgrade keeps the operator's edits.
file(GLOB_RECURSE etc_files RELATIVE ${PROJECT_SOURCE_DIR}/config/etc/pushgate ${PROJECT_SOURCE_DIR}/config/etc/pushgate/*)
set(conffiles "")
foreach(f IN LISTS etc_files)
  string(APPEND conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pushgate/${f}\n")
endforeach()
string(APPEND conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pushgate/scripts/build.sh\n")
string(APPEND conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pushgate/scripts/test.sh\n")
string(APPEND conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pushgate/scripts/abi-record\n")
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${conffiles}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/config/debian/postinst ${PROJECT_SOURCE_DIR}/config/debian/prerm
    ${PROJECT_SOURCE_DIR}/config/debian/postrm ${CMAKE_BINARY_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Out of the checkout and of the way of tests: BUILD/packages.
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
include(CPack)
