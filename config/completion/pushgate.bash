# bash completion for pushgate: commands and options, read from the
# installed binary's own --help (so it never goes stale), and the names of
# branches, jobs and hosts from `pushgate config check --json`-valid configs
# is left to the user: those need a config.
_pushgate_help_words() {
  # $1...: the command path. Prints its subcommands and options.
  local section="" line word
  while IFS= read -r line; do
    case $line in
      Subcommands:|SUBCOMMANDS:) section=sub; continue ;;
      Options:|OPTIONS:) section=opt; continue ;;
      Positionals:|POSITIONALS:) section=""; continue ;;
    esac
    [[ -z $line ]] && continue
    if [[ $section == sub && $line == "  "* ]]; then
      word=${line#  }; word=${word%% *}
      [[ -n $word ]] && printf '%s\n' "$word"
    elif [[ $section == opt && $line == *"-"* ]]; then
      for word in $line; do
        word=${word%,}
        [[ $word == -* ]] && printf '%s\n' "${word%%=*}"
      done
    fi
  done < <("${COMP_WORDS[0]}" "$@" --help 2>/dev/null)
}

_pushgate() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  case $prev in
    -c|--config|--db|--svg) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  # The command path so far: words that are subcommands of the path before.
  local path=() i w subs
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    subs=$(_pushgate_help_words "${path[@]}" | grep -v '^-')
    grep -qx -- "$w" <<<"$subs" && path+=("$w")
  done
  COMPREPLY=($(compgen -W "$(_pushgate_help_words "${path[@]}")" -- "$cur"))
}
complete -F _pushgate pushgate
