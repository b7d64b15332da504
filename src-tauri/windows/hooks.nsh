; NSIS installer hooks (bundle > windows > nsis > installerHooks in tauri.windows.conf.json).
;
; Adds one inbound Windows Firewall rule for DisasterNet at install and removes it at uninstall,
; so the first start on a field network does not stop at the firewall prompt (and works at all on
; a network Windows classifies as Public, where a standard user's "Allow" does not apply).
;
; The rule is scoped to the installed program and to UDP, with no port list: the node listens on
; QUIC 7300/udp, the LAN beacon 7301/udp and mDNS 5353/udp, but falls back to a free QUIC port
; when 7300 is taken, and a port list would miss that port. The MSI adds the same rule through
; windows/firewall.wxs. Keep the two in step.
;
; netsh needs administrator rights, hence nsis > installMode "perMachine" in the config.
; A failure is logged in the install details and does not stop the install: Windows then asks
; at first start, as it would without the rule.

!define DN_FW_RULE "DisasterNet (UDP in)"

!macro NSIS_HOOK_POSTINSTALL
  ; Delete first so that reinstalling or updating over an old version does not stack duplicates.
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="${DN_FW_RULE}" program="$INSTDIR\${MAINBINARYNAME}.exe"'
  Pop $0
  nsExec::ExecToLog 'netsh advfirewall firewall add rule name="${DN_FW_RULE}" dir=in action=allow program="$INSTDIR\${MAINBINARYNAME}.exe" protocol=UDP profile=any enable=yes description="DisasterNet peer-to-peer messaging: QUIC (7300, or a free port), LAN beacon (7301) and mDNS (5353)"'
  Pop $0
  ${If} $0 != 0
    DetailPrint "Could not add the firewall rule (netsh exit $0); Windows will ask at first start."
  ${EndIf}
!macroend

!macro NSIS_HOOK_PREUNINSTALL
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="${DN_FW_RULE}" program="$INSTDIR\${MAINBINARYNAME}.exe"'
  Pop $0
!macroend
