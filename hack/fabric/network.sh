#!/usr/bin/env bash
# A local, native Hyperledger Fabric network on 127.0.0.1 from user-supplied binaries: one
# etcdraft orderer, two peer organisations (one per edge cluster), the channel created
# through the channel participation API, and the edgemigrate chaincode run as a service
# (CCaaS). No Docker.
#
#   FABRIC_BIN=/path/to/fabric/bin hack/fabric/network.sh up      # orderer, peers, channel
#   FABRIC_BIN=/path/to/fabric/bin hack/fabric/network.sh deploy  # chaincode as a service
#   hack/fabric/network.sh down                                   # stop and remove everything
#
# FABRIC_BIN holds peer, orderer, configtxgen, cryptogen, osnadmin and discover as Fabric's release
# downloads provide them; FABRIC_CFG (default $FABRIC_BIN/../config) holds their core.yaml
# and orderer.yaml; FABRIC_CCAAS_BUILDER (default $FABRIC_BIN/../builders/ccaas) is the ccaas
# external builder. FABRIC_WORK (default hack/fabric/.work) holds all state, the logs and
# clients.json, which describes each organisation's client identity for the tests.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${FABRIC_WORK:-$HERE/.work}"
CHANNEL="${FABRIC_CHANNEL:-edgemigrate}"
CC_NAME="${FABRIC_CHAINCODE:-edgemigrate}"
BATCH_TIMEOUT="${FABRIC_BATCH_TIMEOUT:-100ms}"
ORDERER_PORT="${FABRIC_ORDERER_PORT:-7050}"
ADMIN_PORT=$((ORDERER_PORT + 3))
# The organisation whose MSP the init transaction names the ledger's admin (it admits clusters).
ADMIN_ORG="${FABRIC_ADMIN_ORG:-1}"
# The ledger's dead-after window in seconds (chaincode.LedgerConfig.DeadAfterSeconds): how
# long a cluster may stay silent before another member may mark it dead; 0: the default.
DEAD_AFTER="${FABRIC_DEAD_AFTER_SECONDS:-0}"
PEER1_PORT="${FABRIC_PEER1_PORT:-7051}"
PEER2_PORT="${FABRIC_PEER2_PORT:-9051}"
CC_PORT="${FABRIC_CHAINCODE_PORT:-9999}"
OPS_BASE="${FABRIC_OPERATIONS_PORT:-9443}"

log() { echo "fabric: $*" >&2; }
die() { log "$*"; exit 1; }

need_bin() {
  [ -n "${FABRIC_BIN:-}" ] || die "FABRIC_BIN is not set: point it at the bin/ of a Fabric release"
  for b in peer orderer configtxgen cryptogen osnadmin discover; do
    [ -x "$FABRIC_BIN/$b" ] || die "$FABRIC_BIN/$b is missing"
  done
  FABRIC_CFG="${FABRIC_CFG:-$FABRIC_BIN/../config}"
  CCAAS_BUILDER="${FABRIC_CCAAS_BUILDER:-$FABRIC_BIN/../builders/ccaas}"
  [ -f "$FABRIC_CFG/core.yaml" ] && [ -f "$FABRIC_CFG/orderer.yaml" ] || die "$FABRIC_CFG has no core.yaml and orderer.yaml (set FABRIC_CFG)"
  [ -x "$CCAAS_BUILDER/bin/detect" ] || die "no ccaas builder at $CCAAS_BUILDER (set FABRIC_CCAAS_BUILDER)"
  FABRIC_CFG="$(cd "$FABRIC_CFG" && pwd)"
  CCAAS_BUILDER="$(cd "$CCAAS_BUILDER" && pwd)"
}

ORGS="$WORK/organizations"
ORDERER_DIR="$ORGS/ordererOrganizations/example.com/orderers/orderer.example.com"
ORDERER_CA="$ORDERER_DIR/tls/ca.crt"
ORDERER_ADMIN="$ORGS/ordererOrganizations/example.com/users/Admin@example.com/tls"

peer_dir() { echo "$ORGS/peerOrganizations/org$1.example.com/peers/peer0.org$1.example.com"; }
peer_port() { if [ "$1" = 1 ]; then echo "$PEER1_PORT"; else echo "$PEER2_PORT"; fi; }

# start NAME CMD...: run a process in the background, logging to $WORK/logs/NAME.log, and
# remember its pid so that down stops exactly what up started.
start() {
  local name=$1; shift
  mkdir -p "$WORK/logs"
  "$@" >"$WORK/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$WORK/pids"
}

# wait_for SECONDS DESCRIPTION CMD...: retry CMD until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs in $WORK/logs)"
    sleep 0.2
  done
}

# as_admin ORG: environment for the peer CLI acting as ORG's admin on its peer.
as_admin() {
  local dir; dir=$(peer_dir "$1")
  export FABRIC_CFG_PATH="$FABRIC_CFG"
  export CORE_PEER_TLS_ENABLED=true
  export CORE_PEER_LOCALMSPID="Org$1MSP"
  export CORE_PEER_TLS_ROOTCERT_FILE="$dir/tls/ca.crt"
  export CORE_PEER_MSPCONFIGPATH="$ORGS/peerOrganizations/org$1.example.com/users/Admin@org$1.example.com/msp"
  export CORE_PEER_ADDRESS="127.0.0.1:$(peer_port "$1")"
}

up() {
  need_bin
  [ ! -e "$WORK/pids" ] || die "a network is already up in $WORK; run down first"
  mkdir -p "$WORK"
  "$FABRIC_BIN/cryptogen" generate --config="$HERE/crypto-config.yaml" --output="$ORGS" >/dev/null
  sed -e "s|@WORK@|$WORK|g" -e "s|@ORDERER_PORT@|$ORDERER_PORT|g" -e "s|@PEER1_PORT@|$PEER1_PORT|g" \
    -e "s|@PEER2_PORT@|$PEER2_PORT|g" -e "s|@BATCH_TIMEOUT@|$BATCH_TIMEOUT|g" "$HERE/configtx.yaml.in" >"$WORK/configtx.yaml"
  "$FABRIC_BIN/configtxgen" -configPath "$WORK" -profile EdgeMigrateChannel -channelID "$CHANNEL" \
    -outputBlock "$WORK/$CHANNEL.block" 2>"$WORK/configtxgen.log"

  start orderer env FABRIC_CFG_PATH="$FABRIC_CFG" \
    ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$ORDERER_PORT" \
    ORDERER_GENERAL_LOCALMSPID=OrdererMSP ORDERER_GENERAL_LOCALMSPDIR="$ORDERER_DIR/msp" \
    ORDERER_GENERAL_BOOTSTRAPMETHOD=none ORDERER_CHANNELPARTICIPATION_ENABLED=true \
    ORDERER_GENERAL_TLS_ENABLED=true ORDERER_GENERAL_TLS_PRIVATEKEY="$ORDERER_DIR/tls/server.key" \
    ORDERER_GENERAL_TLS_CERTIFICATE="$ORDERER_DIR/tls/server.crt" ORDERER_GENERAL_TLS_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE="$ORDERER_DIR/tls/server.crt" \
    ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY="$ORDERER_DIR/tls/server.key" ORDERER_GENERAL_CLUSTER_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_ADMIN_LISTENADDRESS="127.0.0.1:$ADMIN_PORT" ORDERER_ADMIN_TLS_ENABLED=true \
    ORDERER_ADMIN_TLS_PRIVATEKEY="$ORDERER_DIR/tls/server.key" ORDERER_ADMIN_TLS_CERTIFICATE="$ORDERER_DIR/tls/server.crt" \
    ORDERER_ADMIN_TLS_ROOTCAS="[$ORDERER_CA]" ORDERER_ADMIN_TLS_CLIENTROOTCAS="[$ORDERER_CA]" \
    ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true \
    ORDERER_FILELEDGER_LOCATION="$WORK/orderer/ledger" ORDERER_CONSENSUS_WALDIR="$WORK/orderer/wal" \
    ORDERER_CONSENSUS_SNAPDIR="$WORK/orderer/snap" ORDERER_OPERATIONS_LISTENADDRESS="127.0.0.1:$OPS_BASE" \
    ORDERER_METRICS_PROVIDER=disabled \
    "$FABRIC_BIN/orderer"

  for org in 1 2; do
    local dir port cfg
    dir=$(peer_dir $org); port=$(peer_port $org); cfg="$WORK/peer$org"
    mkdir -p "$cfg"
    # The peer runs chaincode through the ccaas builder only: no Docker.
    sed -e "s|/opt/hyperledger/ccaas_builder|$CCAAS_BUILDER|" "$FABRIC_CFG/core.yaml" >"$cfg/core.yaml"
    grep -q "$CCAAS_BUILDER" "$cfg/core.yaml" || die "$FABRIC_CFG/core.yaml has no ccaas_builder entry to point at $CCAAS_BUILDER"
    start "peer$org" env FABRIC_CFG_PATH="$cfg" \
      CORE_PEER_ID="peer0.org$org.example.com" CORE_PEER_LOCALMSPID="Org${org}MSP" CORE_PEER_MSPCONFIGPATH="$dir/msp" \
      CORE_PEER_LISTENADDRESS="127.0.0.1:$port" CORE_PEER_ADDRESS="127.0.0.1:$port" \
      CORE_PEER_CHAINCODELISTENADDRESS="127.0.0.1:$((port + 1))" CORE_PEER_CHAINCODEADDRESS="127.0.0.1:$((port + 1))" \
      CORE_PEER_GOSSIP_BOOTSTRAP="127.0.0.1:$port" CORE_PEER_GOSSIP_EXTERNALENDPOINT="127.0.0.1:$port" \
      CORE_PEER_TLS_ENABLED=true CORE_PEER_TLS_CERT_FILE="$dir/tls/server.crt" CORE_PEER_TLS_KEY_FILE="$dir/tls/server.key" \
      CORE_PEER_TLS_ROOTCERT_FILE="$dir/tls/ca.crt" CORE_PEER_FILESYSTEMPATH="$cfg/data" \
      CORE_LEDGER_SNAPSHOTS_ROOTDIR="$cfg/snapshots" CORE_OPERATIONS_LISTENADDRESS="127.0.0.1:$((OPS_BASE + org))" \
      CORE_METRICS_PROVIDER=disabled CORE_VM_ENDPOINT="" \
      "$FABRIC_BIN/peer" node start
  done

  local osn=("$FABRIC_BIN/osnadmin" channel --orderer-address "127.0.0.1:$ADMIN_PORT" --ca-file "$ORDERER_CA"
    --client-cert "$ORDERER_ADMIN/client.crt" --client-key "$ORDERER_ADMIN/client.key")
  wait_for 30 "the orderer's admin endpoint" "${osn[@]}" list
  "${osn[@]}" join --channelID "$CHANNEL" --config-block "$WORK/$CHANNEL.block" >/dev/null
  # Transactions sent before the Raft leader exists fail: wait for it.
  wait_for 30 "the orderer's Raft leader" grep -q "Raft leader changed: 0 -> " "$WORK/logs/orderer.log"
  for org in 1 2; do
    as_admin $org
    wait_for 30 "peer $org" "$FABRIC_BIN/peer" channel list
    "$FABRIC_BIN/peer" channel join -b "$WORK/$CHANNEL.block" 2>>"$WORK/logs/cli.log"
  done
  write_clients
  log "up: channel $CHANNEL, orderer 127.0.0.1:$ORDERER_PORT, peers 127.0.0.1:$PEER1_PORT and 127.0.0.1:$PEER2_PORT"
}

write_clients() {
  local sep=""
  {
    echo "{\"channel\": \"$CHANNEL\", \"chaincode\": \"$CC_NAME\", \"orgs\": ["
    for org in 1 2; do
      local user="$ORGS/peerOrganizations/org$org.example.com/users/User1@org$org.example.com/msp"
      echo "$sep{\"mspId\": \"Org${org}MSP\", \"peerEndpoint\": \"127.0.0.1:$(peer_port $org)\","
      echo " \"tlsCACert\": \"$(peer_dir $org)/tls/ca.crt\", \"serverName\": \"peer0.org$org.example.com\","
      echo " \"cert\": \"$(ls "$user"/signcerts/*.pem)\", \"key\": \"$(ls "$user"/keystore/* | head -1)\"}"
      sep=","
    done
    echo "]}"
  } >"$WORK/clients.json"
}

deploy() {
  need_bin
  [ -e "$WORK/pids" ] || die "no network in $WORK; run up first"
  local pkg="$WORK/chaincode" label="${CC_NAME}_1.0"
  mkdir -p "$pkg"
  (cd "$ROOT" && go build -o "$WORK/edgemigrate-chaincode" ./cmd/edgemigrate-chaincode)
  printf '{"address":"127.0.0.1:%s","dial_timeout":"10s","tls_required":false}\n' "$CC_PORT" >"$pkg/connection.json"
  printf '{"type":"ccaas","label":"%s"}\n' "$label" >"$pkg/metadata.json"
  tar -C "$pkg" -czf "$pkg/code.tar.gz" connection.json
  tar -C "$pkg" -czf "$WORK/$CC_NAME.tar.gz" metadata.json code.tar.gz
  as_admin 1
  local id; id=$("$FABRIC_BIN/peer" lifecycle chaincode calculatepackageid "$WORK/$CC_NAME.tar.gz")
  start chaincode env CHAINCODE_SERVER_ADDRESS="127.0.0.1:$CC_PORT" CHAINCODE_ID="$id" "$WORK/edgemigrate-chaincode"
  local peers=()
  # Endorsement: the channel's own policy, MAJORITY of the organisations' peers (with two,
  # both). One organisation running a modified contract on its peers cannot commit a write
  # set alone. --init-required: the init transaction below runs first and once.
  local policy=(--channel-config-policy /Channel/Application/Endorsement --init-required)
  for org in 1 2; do
    as_admin $org
    "$FABRIC_BIN/peer" lifecycle chaincode install "$WORK/$CC_NAME.tar.gz" 2>>"$WORK/logs/cli.log"
    "$FABRIC_BIN/peer" lifecycle chaincode approveformyorg -o "127.0.0.1:$ORDERER_PORT" --tls --cafile "$ORDERER_CA" \
      --channelID "$CHANNEL" --name "$CC_NAME" --version 1.0 --package-id "$id" --sequence 1 \
      "${policy[@]}" --waitForEvent 2>>"$WORK/logs/cli.log"
    peers+=(--peerAddresses "127.0.0.1:$(peer_port $org)" --tlsRootCertFiles "$(peer_dir $org)/tls/ca.crt")
  done
  "$FABRIC_BIN/peer" lifecycle chaincode commit -o "127.0.0.1:$ORDERER_PORT" --tls --cafile "$ORDERER_CA" \
    --channelID "$CHANNEL" --name "$CC_NAME" --version 1.0 --sequence 1 \
    "${policy[@]}" "${peers[@]}" --waitForEvent 2>>"$WORK/logs/cli.log"
  # The init transaction names the ledger's admin MSP (chaincode.InitLedger), endorsed by
  # every organisation's peer like any other write.
  as_admin "$ADMIN_ORG"
  wait_for 30 "the init transaction" init_ledger "${peers[@]}"
  for org in 1 2; do
    as_admin $org
    wait_for 30 "the chaincode on peer $org" "$FABRIC_BIN/peer" chaincode query -C "$CHANNEL" -n "$CC_NAME" -c '{"Args":["ListClusters"]}'
  done
  # A gateway finds the other organisations' endorsers by discovery, which knows a peer only
  # once gossip has: until then every submit fails ("no combination of peers can be derived
  # which satisfy the endorsement policy"). Wait until each peer's discovery lists an
  # endorser of every organisation.
  for org in 1 2; do
    wait_for 120 "discovery on peer $org to list every organisation's endorser" endorsers_known $org
  done
  log "deployed $CC_NAME ($id) on channel $CHANNEL, endorsed by MAJORITY, admin Org${ADMIN_ORG}MSP, dead-after ${DEAD_AFTER}s"
}

# init_ledger PEER-FLAGS...: run the init transaction, or find it done (a retry after an
# attempt that committed but did not say so).
init_ledger() {
  local args
  args=$(printf '{"Args":["InitLedger","{\\"adminMsp\\":\\"Org%sMSP\\",\\"deadAfterSeconds\\":%d}"]}' "$ADMIN_ORG" "$DEAD_AFTER")
  "$FABRIC_BIN/peer" chaincode invoke -o "127.0.0.1:$ORDERER_PORT" --tls --cafile "$ORDERER_CA" \
    -C "$CHANNEL" -n "$CC_NAME" --isInit "$@" --waitForEvent -c "$args" 2>>"$WORK/logs/cli.log" ||
    "$FABRIC_BIN/peer" chaincode query -C "$CHANNEL" -n "$CC_NAME" -c '{"Args":["GetLedgerConfig"]}' 2>>"$WORK/logs/cli.log" |
    grep -q "\"adminMsp\":\"Org${ADMIN_ORG}MSP\""
}

# endorsers_known ORG: peer ORG's discovery service names an endorser of Org1MSP and Org2MSP
# for the chaincode.
endorsers_known() {
  local user="$ORGS/peerOrganizations/org$1.example.com/users/User1@org$1.example.com/msp" out
  out=$("$FABRIC_BIN/discover" endorsers --channel "$CHANNEL" --chaincode "$CC_NAME" --server "127.0.0.1:$(peer_port "$1")" \
    --peerTLSCA "$(peer_dir "$1")/tls/ca.crt" --userCert "$(ls "$user"/signcerts/*.pem)" --userKey "$(ls "$user"/keystore/* | head -1)" \
    --MSP "Org$1MSP" 2>>"$WORK/logs/cli.log") || return 1
  grep -q '"Org1MSP"' <<<"$out" && grep -q '"Org2MSP"' <<<"$out"
}

down() {
  if [ -f "$WORK/pids" ]; then
    # Stop exactly the processes up and deploy started, by pid.
    while read -r pid name; do
      kill "$pid" 2>/dev/null && log "stopped $name ($pid)" || true
    done <"$WORK/pids"
    while read -r pid _; do
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    done <"$WORK/pids"
  fi
  rm -rf "$WORK"
}

case "${1:-}" in
  up) up ;;
  deploy) deploy ;;
  down) down ;;
  *) echo "usage: $0 up|deploy|down" >&2; exit 2 ;;
esac
