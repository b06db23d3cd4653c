-- A player joins the lobby; the join that makes four turns the lobby into a game.
-- Redis runs the whole script with nothing in between: no other client's command
-- can see three players moved and the fourth still waiting.
--
-- KEYS[1]  the lobby: a set of the players waiting
-- KEYS[2]  the key of the game to create, used only if this join makes a game
-- ARGV[1]  the player's name: data, never code, whatever characters it holds
-- ARGV[2]  the game's id; ARGV[3] players per game; ARGV[4] seconds a game is kept
-- Returns the game's id when this join made a game, nil when the player waits.

local lobby, game = KEYS[1], KEYS[2]
local player, game_id = ARGV[1], ARGV[2]
local size, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])

redis.call('SADD', lobby, player)  -- joining twice is joining once
if redis.call('SCARD', lobby) < size then
  return nil
end

local players = redis.call('SMEMBERS', lobby)
redis.call('SADD', game, unpack(players))
redis.call('EXPIRE', game, ttl)  -- games do not pile up forever
redis.call('DEL', lobby)  -- the next player starts a new lobby
return game_id
