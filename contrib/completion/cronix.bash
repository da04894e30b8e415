# bash completion for cronix (docs/cli.md).
# Source it, or install it as /usr/share/bash-completion/completions/cronix.

_cronix_jobs_from_server()
{
  # Job names for ID|NAME arguments; quiet and quick when no server answers.
  cronix job ls -o json --api-timeout 3s 2>/dev/null |
    sed -n 's/^    "name": "\(.*\)",$/\1/p'
}

_cronix()
{
  local cur prev cmd sub
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  cmd=${COMP_WORDS[1]}
  sub=${COMP_WORDS[2]}

  local client_opts="--server --token --cacert --api-timeout -o --output --help"
  local job_fields="--name --type --command --spec --node --allocation --tz
    --timeout --retry-times --retry-interval --concurrency --misfire
    --starting-deadline --notify --notify-to --env --workdir --http-method
    --header --body --note --enabled --paused --notify-events --max-duration
    --run-as --limit-memory-mb --limit-nproc --limit-cpu --limit-nofile
    --selector"

  case $prev in
  -o | --output)
    COMPREPLY=($(compgen -W "table wide json" -- "$cur"))
    return
    ;;
  --type)
    COMPREPLY=($(compgen -W "cmd http" -- "$cur"))
    return
    ;;
  --allocation)
    COMPREPLY=($(compgen -W "manual auto" -- "$cur"))
    return
    ;;
  --concurrency)
    COMPREPLY=($(compgen -W "forbid allow replace" -- "$cur"))
    return
    ;;
  --misfire)
    COMPREPLY=($(compgen -W "run_once skip" -- "$cur"))
    return
    ;;
  --notify)
    COMPREPLY=($(compgen -W "email feishu off" -- "$cur"))
    return
    ;;
  --enabled)
    COMPREPLY=($(compgen -W "true false" -- "$cur"))
    return
    ;;
  --role)
    COMPREPLY=($(compgen -W "admin operator viewer" -- "$cur"))
    return
    ;;
  --state)
    COMPREPLY=($(compgen -W "alive dead" -- "$cur"))
    return
    ;;
  --status)
    COMPREPLY=($(compgen -W "running success failed timeout killed skipped lost error" -- "$cur"))
    return
    ;;
  --http-method)
    COMPREPLY=($(compgen -W "GET POST PUT PATCH DELETE HEAD OPTIONS" -- "$cur"))
    return
    ;;
  -f | --file | --cacert | --config)
    COMPREPLY=($(compgen -f -- "$cur"))
    return
    ;;
  esac

  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "standalone admin node cron config user job token
      audit crontab login logout version help" -- "$cur"))
    return
  fi

  case $cmd in
  job)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "ls get add edit rm pause resume run kill logs
        next export apply import-crontab" -- "$cur"))
      return
    fi
    local opts=$client_opts
    case $sub in
    ls) opts="$opts --name --node --type --enabled" ;;
    add | edit) opts="$opts $job_fields" ;;
    run) opts="$opts --node --wait --wait-timeout" ;;
    kill) opts="$opts --node" ;;
    logs) opts="$opts -n --count --status --run -f --follow" ;;
    next) opts="$opts --spec --tz -n --count" ;;
    export) opts="$opts --name" ;;
    apply) opts="$opts -f --file --dry-run --prune" ;;
    import-crontab)
      opts="$opts --node --paused --tz --dry-run"
      if [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
      fi
      ;;
    esac
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
      case $sub in
      get | edit | rm | pause | resume | run | kill | logs | next)
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$(_cronix_jobs_from_server)" -- "$cur"))
        ;;
      esac
    fi
    ;;
  node)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "ls rm drain undrain --help" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$client_opts --state" -- "$cur"))
    fi
    ;;
  user)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "ls add rm passwd" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$client_opts --role --email --feishu-id
        --password-stdin --token --store --config" -- "$cur"))
    fi
    ;;
  token)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "ls rm" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$client_opts --user" -- "$cur"))
    fi
    ;;
  audit)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "ls" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$client_opts --user --kind --since --from --to
        -n --count" -- "$cur"))
    fi
    ;;
  crontab)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "import" -- "$cur"))
    elif [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$client_opts --node --paused --tz --dry-run
        --system" -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    ;;
  login)
    COMPREPLY=($(compgen -W "--server --username --password-stdin --cacert" -- "$cur"))
    ;;
  cron)
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "next check" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "--from --count --tz" -- "$cur"))
    fi
    ;;
  config)
    COMPREPLY=($(compgen -W "sample show" -- "$cur"))
    ;;
  esac
}
complete -F _cronix cronix
